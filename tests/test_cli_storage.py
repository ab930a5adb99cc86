"""``otel-decisions query|schema|db|models`` through typer's CliRunner on real chDB."""

from __future__ import annotations

import csv
import io
import json

import pytest
from typer.testing import CliRunner

from otel_decisions.cli import app
from otel_decisions.store.client import get_client
from tests.seed import fresh_chdb_dsn, seed_decisions

runner = CliRunner()


@pytest.fixture(scope="module")
def seeded():
    dsn = fresh_chdb_dsn("cli")
    client = get_client(dsn, role="admin")
    data = seed_decisions(client, n=120, seed=4)
    client.close()
    return dsn, data


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_query_list_and_show():
    listed = invoke("query", "list", "--format", "json")
    assert listed.exit_code == 0, listed.output
    names = {row["name"] for row in json.loads(listed.output)}
    assert {"adverse_action_reasons", "subject_decisions", "fast_reviews", "completeness_missing_decisions"} <= names
    shown = invoke("query", "show", "fast_reviews")
    assert shown.exit_code == 0
    assert "max_seconds" in shown.output and "Float64" in shown.output and "{max_seconds:Float64}" in shown.output
    assert "EU AI Act Art. 14(4)" in shown.output


def test_query_run_formats(seeded):
    dsn, data = seeded
    subject = data.decisions[0].subject_id
    expected = {d.decision_id for d in data.decisions if d.subject_id == subject}
    as_json = invoke("query", "run", "subject_decisions", "--param", f"subject_id={subject}", "--format", "json", "--dsn", dsn)
    assert as_json.exit_code == 0, as_json.output
    rows = json.loads(as_json.output)
    assert {r["decision_id"] for r in rows} == expected
    as_csv = invoke("query", "run", "subject_decisions", "-p", f"subject_id={subject}", "-f", "csv", "--dsn", dsn)
    parsed = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert {r["decision_id"] for r in parsed} == expected
    as_md = invoke("query", "run", "subject_decisions", "-p", f"subject_id={subject}", "-f", "markdown", "--dsn", dsn)
    assert as_md.output.startswith("| decision_id | timestamp |")
    assert sum(line.startswith("| ") for line in as_md.output.splitlines()) == len(expected) + 1
    as_table = invoke("query", "run", "fast_reviews", "-p", "max_seconds=5", "--dsn", dsn)
    assert as_table.exit_code == 0 and "Reviews too fast to be real" in as_table.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("query", "run", "no_such_query"), "unknown query 'no_such_query'"),
        (("query", "run", "subject_decision"), "did you mean subject_decisions"),
        (("query", "run", "subject_decisions"), "needs parameter 'subject_id'"),
        (("query", "run", "fast_reviews", "-p", "max_seconds=soon"), "parameter 'max_seconds' must be Float64"),
        (("query", "run", "fast_reviews", "-p", "start=yesterday"), "parameter 'start' must be DateTime64(3)"),
        (("query", "run", "fast_reviews", "-p", "speed=1"), "has no parameter speed"),
        (("query", "run", "fast_reviews", "-p", "max_seconds"), "use NAME=VALUE"),
        (("query", "run", "fast_reviews", "-f", "xml"), "--format 'xml'"),
        (("query", "show", "nope"), "unknown query 'nope'"),
        (("schema", "apply", "--dsn", "ftp://x"), "unsupported scheme 'ftp'"),
    ],
)
def test_bad_invocations_exit_2_and_say_which(args, message):
    result = invoke(*args)
    assert result.exit_code == 2, result.output
    assert message in " ".join(result.output.split())


def test_schema_apply_db_info_and_models(tmp_path):
    dsn = fresh_chdb_dsn("clischema")
    missing = invoke("db", "info", "--dsn", dsn, "--format", "json")
    assert missing.exit_code == 3 and "no decision store here" in " ".join(missing.output.split())  # a reader creates nothing
    first = invoke("schema", "apply", "--dsn", dsn)
    assert first.exit_code == 0 and "applied migration 5" in first.output
    second = invoke("schema", "apply", "--dsn", dsn, "--traces-ttl-days", "30")
    assert "schema up to date" in second.output and "30 days (decision and review spans kept)" in second.output
    info = invoke("db", "info", "--dsn", dsn, "--format", "json")
    assert info.exit_code == 0, info.output
    parsed = json.loads(info.output)
    assert parsed["migrations_applied"] == [1, 2, 3, 4, 5] and parsed["migrations_pending"] == []
    assert parsed["decisions_rows"] == 0 and parsed["collector_schema"] == "v0.161.0"

    approved = invoke("models", "approve", "credit-scorer", "2.0", "--by", "mrm", "--from", "2026-01-01", "--note", "MRM-1", "--dsn", dsn)
    assert approved.exit_code == 0, approved.output
    revoked = invoke("models", "revoke", "credit-scorer", "2.0", "--at", "2026-03-01T00:00:00Z", "--dsn", dsn)
    assert revoked.exit_code == 0 and "revoked 1" in revoked.output
    listed = json.loads(invoke("models", "list", "--format", "json", "--dsn", dsn).output)
    assert listed == [
        {
            "model_name": "credit-scorer",
            "model_version": "2.0",
            "approved_from": "2026-01-01T00:00:00+00:00",
            "approved_until": "2026-03-01T00:00:00+00:00",
            "approved_by": "mrm",
            "note": "MRM-1",
        }
    ]
    again = invoke("models", "revoke", "credit-scorer", "2.0", "--at", "2026-04-01", "--dsn", dsn)
    assert again.exit_code == 2 and "no approval open" in again.output
    bad_date = invoke("models", "approve", "m", "1", "--by", "x", "--from", "someday", "--dsn", dsn)
    assert bad_date.exit_code == 2 and "--from 'someday'" in bad_date.output


def test_schema_apply_dry_run_prints_cluster_ddl():
    result = invoke("schema", "apply", "--dry-run", "--cluster", "prod", "--dsn", "http://u:p@db.example:8123/otel")
    assert result.exit_code == 0, result.output
    assert 'CREATE TABLE IF NOT EXISTS "otel"."otel_traces" ON CLUSTER `prod` (' in result.output
    assert "ReplicatedReplacingMergeTree" in result.output


@pytest.mark.parametrize("command", [("delivery", "status"), ("query", "run", "overrides"), ("verify",), ("db", "info")])
def test_an_invalid_setting_is_one_message_and_exit_2_on_every_command(command, monkeypatch, tmp_path):
    monkeypatch.setenv("OTEL_DECISIONS_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("OTEL_DECISIONS_COMMIT_MAX_RECORDS", "0")
    result = runner.invoke(app, list(command))
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert "commit_max_records" in result.output and "OTEL_DECISIONS_COMMIT_MAX_RECORDS" in result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, ValueError)


@pytest.mark.parametrize("command", [("verify",), ("query", "run", "overrides")])
def test_no_decision_store_here_has_its_own_message_and_exit_code(command, tmp_path):
    """An empty database (no `schema apply`) is not tampering (exit 1) and not a crash."""
    dsn = fresh_chdb_dsn("empty-store")
    result = runner.invoke(app, [*command, "--dsn", dsn])
    assert result.exit_code == 3, (result.exit_code, result.output, result.exception)
    text = " ".join(result.output.split())  # the console wraps long lines
    assert "no decision store here" in text and "schema apply" in text


# --- report -----------------------------------------------------------------------------------------
def _report_counts(path) -> dict[str, str]:
    from tests.test_report import parse

    sections = parse(path.read_text(encoding="utf-8"))
    return {key: " ".join(sections.text[f"count-{key}"]).split()[0] for key in ("decisions", "overrides", "adverse")}


def test_report_for_a_period_and_for_one_flow_run(seeded, tmp_path):
    from collections import Counter
    from datetime import datetime, timezone

    dsn, data = seeded
    times = sorted(d.timestamp_ns for d in data.decisions)
    since = datetime.fromtimestamp(times[len(times) // 4] / 1e9, tz=timezone.utc).replace(microsecond=0)
    until = datetime.fromtimestamp(times[3 * len(times) // 4] / 1e9, tz=timezone.utc).replace(microsecond=0)
    out = tmp_path / "period.html"
    ran = invoke("report", "--since", since.isoformat(), "--until", until.isoformat(), "--out", str(out), "--dsn", dsn)
    assert ran.exit_code == 0, ran.output
    expected = sum(1 for t in times if since.timestamp() * 1e9 <= t < until.timestamp() * 1e9)
    assert 0 < expected < len(times)
    assert _report_counts(out)["decisions"] == str(expected)

    run_id, count = Counter(d.flow_run_id for d in data.decisions if d.flow_run_id).most_common(1)[0]
    out = tmp_path / "run.html"
    ran = invoke("report", "--flow-run", run_id, "--out", str(out), "--dsn", dsn)
    assert ran.exit_code == 0, ran.output
    assert _report_counts(out)["decisions"] == str(count)
    summary = json.loads(invoke("query", "run", "period_summary", "-p", f"flow_run_id={run_id}", "-f", "json",
                                "--dsn", dsn).output)[0]
    assert _report_counts(out) == {"decisions": str(summary["decisions"]), "overrides": str(summary["overrides"]),
                                   "adverse": str(summary["adverse"])}
    from tests.test_report import parse

    trail = parse(out.read_text(encoding="utf-8"))
    reviews = sum(1 for r in data.reviews if r.decision_id in {d.decision_id for d in data.decisions
                                                               if d.flow_run_id == run_id})
    assert trail.tags["table-flow-run"]["tr"] - 1 == count + reviews  # the run's audit trail: decisions + reviews
    logged = json.loads(invoke("query", "run", "access_audit", "-f", "json", "--dsn", dsn).output)
    assert any(r["command"] == "report" and run_id in r["parameters"] for r in logged)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--flow-run", "run-17"), "--flow-run 'run-17': a Prefect flow run id is a UUID"),
        (("--since", "2026-02-01", "--until", "2026-01-01"), "is not after since (--since)"),
        (("--since", "yesterday"), "--since 'yesterday': use an ISO date or time"),
    ],
)
def test_report_refuses_bad_input_before_reading(args, message, tmp_path):
    ran = invoke("report", *args, "--out", str(tmp_path / "r.html"), "--dsn", "chdb:///nonexistent/store/dir")
    assert ran.exit_code == 2, ran.output
    assert message in " ".join(ran.output.split())
    assert not (tmp_path / "r.html").exists()
