"""`otel-decisions demo` end to end, in real processes on a fresh embedded database.

- every catalogue query returns at least one row on the demo's data;
- a second run adds new decisions without duplicating or corrupting the first run's;
- two invocations on the same database at once both succeed (the embedded database is served).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPLICANTS = 60

pytestmark = pytest.mark.slow


def _env(tmp: Path, name: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "OTEL_DECISIONS_DATA_DIR": str(tmp / f"data-{name}"),
        "OTEL_DECISIONS_HMAC_KEY": "demo-test-hmac-key-0123456789",
        "PREFECT_HOME": str(tmp / f"prefect-{name}"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "COLUMNS": "200",
    })
    return env


def _demo(tmp: Path, dsn: str, name: str, **popen: object) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "otel_decisions.cli", "demo", "--applicants", str(APPLICANTS), "--dsn", dsn,
           "--report", str(tmp / f"report-{name}.html")]
    return subprocess.Popen(cmd, cwd=tmp, env=_env(tmp, name), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **popen)  # type: ignore[arg-type]


def _inspect(dsn: str, tmp: Path) -> dict:
    """Run every catalogue query (and some counts) in a fresh process: chDB allows one path per process."""
    code = textwrap.dedent(f"""
        import json
        from otel_decisions.store.client import get_client
        from otel_decisions.verify import verify
        from otel_decisions.catalogue import load_catalogue, run_query
        client = get_client({dsn!r}, role="admin")
        one = lambda sql: client.query(sql).result_rows[0]
        params = {{
            "subject_id": one("SELECT subject_id FROM decisions FINAL WHERE subject_id != '' ORDER BY timestamp LIMIT 1")[0],
            "flow_run_id": one("SELECT flow_run_id FROM decisions FINAL WHERE flow_run_id != '' ORDER BY timestamp LIMIT 1")[0],
            "decision_id": one("SELECT decision_id FROM decisions FINAL ORDER BY timestamp LIMIT 1")[0],
            "request": one("SELECT any(request) FROM lifecycle_operations WHERE kind = 'erasure'")[0],
            "source": "credit-bureau",
        }}
        rows = {{}}
        for name, query in sorted(load_catalogue().items()):
            given = {{p.name: params[p.name] for p in query.params if p.name in params}}
            rows[name] = len(run_query(client, name, given).rows)
        out = {{
            "rows": rows,
            "decisions": one("SELECT count() FROM decisions FINAL")[0],
            "distinct": one("SELECT uniqExact(decision_id) FROM decisions")[0],
            "decision_spans": one("SELECT count() FROM otel_traces WHERE startsWith(SpanName, 'decision ')")[0],
            "reviews": one("SELECT count() FROM decision_reviews FINAL")[0],
            "overrides": one("SELECT countIf(action = 'override') FROM decision_reviews FINAL")[0],
            "types": dict(client.query("SELECT decision_type, count() FROM decisions FINAL GROUP BY decision_type").result_rows),
            "integrity_ok": verify(client).ok,
            "raw_ids_in_store": one("SELECT count() FROM otel_traces WHERE positionCaseInsensitive(toString(SpanAttributes), '@example.com') > 0")[0],
        }}
        print("RESULT" + json.dumps(out, default=str))
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp, capture_output=True, text=True, timeout=300,
                            env=_env(tmp, "inspect"))
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT"))
    return json.loads(line[len("RESULT"):])


def test_demo_answers_the_catalogue_and_runs_twice_without_duplicates(tmp_path):
    dsn = f"chdb://{tmp_path / 'store'}"
    started = time.monotonic()
    first = _demo(tmp_path, dsn, "first")
    output, _ = first.communicate(timeout=600)
    first_seconds = time.monotonic() - started
    assert first.returncode == 0, output
    assert "Compliance summary" in output and "Evidence report" in output
    assert (tmp_path / "report-first.html").stat().st_size > 5_000
    print(f"demo ({APPLICANTS} applicants) took {first_seconds:.1f} s")

    after_first = _inspect(dsn, tmp_path)
    empty = sorted(name for name, count in after_first["rows"].items() if count == 0)
    # A fresh demo has nothing past its retention date, records a decision every day it runs tasks, and asks
    # for no review in the Prefect UI (a person answers those forms: tests/test_prefect_ui.py drives one).
    assert empty == ["retention_due", "review_response_times", "silent_days"], (
        f"catalogue queries with no rows on the demo's data: {empty}"
    )
    assert after_first["decisions"] == after_first["distinct"] >= APPLICANTS
    assert after_first["reviews"] > 0 and after_first["overrides"] > 0
    assert {"credit.approval", "clinical.triage"} <= set(after_first["types"])
    assert after_first["integrity_ok"]
    assert after_first["raw_ids_in_store"] == 0  # synthetic e-mail addresses never reach the store

    second = _demo(tmp_path, dsn, "second")
    output, _ = second.communicate(timeout=600)
    assert second.returncode == 0, output
    after_second = _inspect(dsn, tmp_path)
    assert after_second["decisions"] == after_second["distinct"] == 2 * after_first["decisions"]
    assert after_second["reviews"] == 2 * after_first["reviews"]
    assert after_second["integrity_ok"]  # the first run's records are intact


def test_two_demos_on_the_same_database_at_once_both_succeed(tmp_path):
    """Two processes recording into one embedded database at the same time: neither is locked out,
    and every decision of both is stored once."""
    dsn = f"chdb://{tmp_path / 'store'}"
    first = _demo(tmp_path, dsn, "first")
    second = _demo(tmp_path, dsn, "second")
    outputs = [process.communicate(timeout=600)[0] for process in (first, second)]
    for process, output in zip((first, second), outputs, strict=True):
        assert process.returncode == 0, output
        assert "locked by another process" not in output
    both = _inspect(dsn, tmp_path)
    assert both["decisions"] == both["distinct"] and both["decisions"] >= 2 * APPLICANTS
    assert both["integrity_ok"]


def test_default_demo_keeps_its_own_store_and_prints_commands_that_work_as_pasted(tmp_path):
    """`make demo` twice: the second run replaces the demo's store (no doubled counts), the user's own
    store is never touched, and the "Next:" lines run as pasted from a shell whose PATH lacks the venv."""
    counts = []
    for name in ("first", "second"):
        cmd = [sys.executable, "-m", "otel_decisions.cli", "demo", "--applicants", "20",
               "--report", str(tmp_path / f"report-{name}.html")]
        env = _env(tmp_path, "default")
        env.pop("OTEL_DECISIONS_DSN", None)
        run = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
        data_dir = tmp_path / "data-default"
        assert not (data_dir / "chdb").exists(), "the demo wrote into the user's own store"
        demo_dsn = f"chdb://{(data_dir / 'demo' / 'chdb').resolve()}?database=otel_demo"
        counts.append(_inspect(demo_dsn, tmp_path)["decisions"])
        lines = run.stdout.splitlines()
        pasted = [line.strip() for line in lines[lines.index("Next:") + 1:] if "query run override_rate_by_model" in line]
        report_line = [line.strip() for line in lines[lines.index("Next:") + 1:] if " report --flow-run " in line]
    assert counts[0] == counts[1] > 0
    shell_env = {**_env(tmp_path, "default"), "PATH": "/usr/bin:/bin"}
    result = subprocess.run(pasted[0], shell=True, cwd=tmp_path, env=shell_env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (pasted[0], result.stdout, result.stderr)
    assert result.stdout.splitlines()[0].startswith("model_name")  # the CSV header of the query's answer
    (report_command,) = report_line  # one flow run's evidence report, for the credit flow's run
    result = subprocess.run(report_command, shell=True, cwd=tmp_path, env=shell_env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, (report_command, result.stdout, result.stderr)
    page = (tmp_path / "credit-run.html").read_text(encoding="utf-8")
    assert 'data-testid="table-flow-run"' in page and "credit.approval" in page
