"""The record's whole life on real chDB: retention dates, legal holds, disposal, erasure, corrections, notices,
incidents and the access log, each checked on the stored rows, the catalogue query that asks about it, and
``verify`` (an authorised removal is not tampering; a deletion without its record still is).

Decisions are recorded through the capture API (real spans, real hash chain, signed checkpoints) and stored
through the real exporter, as in production.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from typer.testing import CliRunner

import otel_decisions
from otel_decisions import lifecycle
from otel_decisions.catalogue import run_query
from otel_decisions.cli import app
from otel_decisions.privacy import PrivacyPolicy
from otel_decisions.retention import RetentionPolicy, add_months
from otel_decisions.settings import load_settings
from otel_decisions.verify import verify

from .conftest import TEST_HMAC_KEY
from .records import RecordStore

KEY = TEST_HMAC_KEY.encode()
TODAY = datetime.now(UTC).date()


def pseudonym(raw: str) -> str:
    return PrivacyPolicy.from_settings(load_settings(hmac_key=TEST_HMAC_KEY)).pseudonymise(raw)


def rows(client, name, **params):
    return run_query(client, name, params).as_dicts()


def record(**fields):
    base = dict(type="credit.approval", outcome="deny", confidence=0.8, inputs={"income": 41_000, "dti": 0.5},
                reasons=["debt-to-income ratio too high"], model_name="credit-scorer", model_version="2.0")
    base.update(fields)
    return otel_decisions.record_decision(**base)


def stored_ids(client, table="decisions", key="decision_id"):
    return {r[0] for r in client.query(f"SELECT DISTINCT {key} FROM {table}").result_rows}


# --- retention dates ---------------------------------------------------------------------------------
def test_retain_until_is_the_longest_period_that_applies_and_is_stored_typed(tmp_path):
    store = RecordStore(tmp_path, "retention")
    reg_b = record(retention_class="reg-b-25m", regulations=["ECOA-RegB-1002.9"])
    finra = record(retention_class="reg-b-25m", regulations=["ECOA-RegB-1002.9", "FINRA-4511"])
    plain = record(retention_class=None, regulations=[])
    unknown = record(retention_class="no-such-class")
    store.store()
    got = {
        r[0]: r[1:]
        for r in store.client.query(
            "SELECT decision_id, retention_until, retention_basis, retention_obligation_until, retention_policy "
            "FROM decisions FINAL"
        ).result_rows
    }
    day = datetime.fromtimestamp(reg_b.timestamp_ns / 1e9, UTC).date()
    policy = RetentionPolicy.from_settings({})
    assert got[reg_b.id][:3] == (add_months(day, 25), policy.rules["reg-b-25m"].basis, add_months(day, 25))
    assert got[finra.id][:3] == (add_months(day, 72), policy.rules["finra-6y"].basis, add_months(day, 72))  # longest
    assert got[plain.id][:3] == (add_months(day, 12), policy.rules["standard"].basis, None)  # no obligation
    assert got[unknown.id][0] is None and got[unknown.id][2] is None  # kept until the policy names the class
    # a longer internal period beside a shorter obligation: disposal waits for the longer, erasure only the shorter
    mixed = policy.term(day, "standard", ["EU-AI-Act-Art12"])
    assert (mixed.retain_until, mixed.obligation_until) == (add_months(day, 12), add_months(day, 6))
    assert {g[3] for g in got.values()} == {policy.policy_id}
    assert verify(store.client, key=KEY).ok


def test_a_retention_policy_setting_adds_a_class_and_bad_ones_name_the_field():
    policy = RetentionPolicy.from_settings({"trading-7y": {"period": "7y", "basis": "MiFID II Art. 16(6)"}})
    term = policy.term(date(2026, 2, 28), "trading-7y")
    assert term.retain_until == date(2033, 2, 28) and term.obligation and term.basis == "MiFID II Art. 16(6)"
    with pytest.raises(otel_decisions.errors.SettingsError, match=r"retention_policy\['x'\].*'7 years'"):
        RetentionPolicy.from_settings({"x": "7 years"})
    with pytest.raises(otel_decisions.errors.SettingsError, match="retention_policy"):
        load_settings(retention_policy={"x": {"period": "1y", "obligation": True}})  # an obligation needs its basis


# --- disposal and holds ------------------------------------------------------------------------------
@pytest.fixture
def aged(tmp_path):
    """Six decisions: four reg-b (25 months), two finra (6 years); a review and a correction on one reg-b."""
    store = RecordStore(tmp_path, "disposal")
    short = [record(retention_class="reg-b-25m", subject_id=f"applicant-{i}") for i in range(4)]
    long = [record(retention_class="finra-6y", subject_id=f"applicant-{i}") for i in range(2)]
    otel_decisions.record_review(short[0], reviewer="analyst-1", action="approve", reason="checked")
    otel_decisions.record_correction(short[0], field="inputs.income", value=52_000, corrected_by="analyst-1",
                                     reason="payslip received")
    store.store()
    return store, short, long


def test_retention_due__disposal_removes_exactly_the_expired_unheld_records_and_verify_passes(aged):
    store, short, long = aged
    client = store.client
    later = TODAY + timedelta(days=31 * 30)  # past 25 months, within 6 years
    # a hold placed after the decisions were made keeps one of them through retention apply
    hold = lifecycle.place_hold(client, "decision", [short[3].id], reason="complaint", reference="CFPB-17", actor="legal")
    assert {r["decision_id"] for r in rows(client, "retention_due", as_of=later.isoformat())} == {d.id for d in short[:3]}

    dry = lifecycle.apply_retention(client, actor="records-manager", key=KEY, dry_run=True, as_of=later)
    assert sorted(dry.deleted) == sorted(d.id for d in short[:3]) and dry.held == 1
    cli_dry = CliRunner().invoke(app, ["retention", "apply", "--dry-run", "--by", "rm", "--as-of", later.isoformat(),
                                       "--dsn", store.dsn, "--format", "json"])
    assert cli_dry.exit_code == 0, cli_dry.output
    assert sorted(r["decision_id"] for r in json.loads(cli_dry.stdout)) == sorted(d.id for d in short[:3])
    assert len(stored_ids(client)) == 6  # a dry run changes nothing

    result = lifecycle.apply_retention(client, actor="records-manager", key=KEY, as_of=later,
                                       policy=RetentionPolicy.from_settings({}))
    assert sorted(result.deleted) == sorted(d.id for d in short[:3])
    assert result.links == 5  # three decisions, the review and the correction of short[0]
    assert stored_ids(client) == {short[3].id, *(d.id for d in long)}
    assert stored_ids(client, "decision_reviews") == set() and stored_ids(client, "decision_events") == set()
    gone = "', '".join(d.id for d in short[:3])
    assert client.command(f"SELECT count() FROM otel_traces WHERE SpanAttributes['decision.id'] IN ('{gone}')") == 0
    ((kind, actor, deleted, signature),) = client.query(
        "SELECT kind, actor, deleted, signature FROM lifecycle_operations").result_rows
    assert (kind, actor, deleted) == ("disposal", "records-manager", 3) and len(signature) == 64
    assert client.command("SELECT count() FROM retention_policies") == 1  # the policy in force is on record

    report = verify(client, key=KEY)
    assert report.ok, report.problems
    assert (report.removed, report.operations, report.unsigned_operations) == (5, 1, 0)
    cli = CliRunner().invoke(app, ["verify", "--dsn", store.dsn], env={"OTEL_DECISIONS_HMAC_KEY": TEST_HMAC_KEY})
    assert cli.exit_code == 0 and "5 records removed by 1 recorded disposals/erasures" in " ".join(cli.output.split())

    # released, the held record goes at the next run
    lifecycle.release_hold(client, hold.hold_id, actor="legal", reason="complaint closed")
    changed = RetentionPolicy.from_settings({"reg-b-25m": {"period": "26m", "basis": "Reg B 1002.12(b)(1), margin"}})
    again = lifecycle.apply_retention(client, actor="records-manager", key=KEY, as_of=later, policy=changed)
    assert again.deleted == [short[3].id] and stored_ids(client) == {d.id for d in long}
    assert verify(client, key=KEY).ok
    # the policy change is on record, with who ran it
    recorded = client.query("SELECT policy_id, recorded_by FROM retention_policies ORDER BY recorded_at").result_rows
    assert recorded == [(RetentionPolicy.from_settings({}).policy_id, "records-manager"),
                        (changed.policy_id, "records-manager")]


def test_a_deletion_without_a_disposal_record_is_still_reported(aged):
    store, short, long = aged
    client = store.client
    later = TODAY + timedelta(days=31 * 30)
    lifecycle.apply_retention(client, actor="records-manager", key=KEY, as_of=later)
    assert verify(client, key=KEY).ok
    victim = long[0].id
    client.command(f"DELETE FROM otel_traces WHERE SpanAttributes['decision.id'] = '{victim}'")
    client.command(f"DELETE FROM decisions WHERE decision_id = '{victim}'")
    problems = verify(client, key=KEY).problems
    assert [p.kind for p in problems] == ["missing"] and "missing" in problems[0].detail
    # a forged tombstone (no signed operation behind it) does not cover it either
    client.command(
        "INSERT INTO lifecycle_records (operation_id, kind, action, record_kind, record_id, decision_id, chain, seq, "
        "hash, prev_hash, at) SELECT 'forged', 'disposal', 'deleted', 'decision', decision_id, decision_id, "
        f"integrity_chain, integrity_seq, integrity_hash, integrity_prev_hash, now64(3) FROM decisions FINAL LIMIT 0"
    )
    chain, seq = client.query(
        f"SELECT any(integrity_chain), max(integrity_seq) FROM decisions").result_rows[0]
    client.insert("lifecycle_records", [["forged", "disposal", "deleted", "decision", victim, victim, chain, 99, "x", "y",
                                         datetime.now(UTC)]],
                  column_names=["operation_id", "kind", "action", "record_kind", "record_id", "decision_id", "chain",
                                "seq", "hash", "prev_hash", "at"])
    kinds = sorted(p.kind for p in verify(client, key=KEY).problems)
    assert "forged_removal" in kinds and "missing" in kinds
    # an altered disposal record (its digest no longer matches) is found
    client.command("ALTER TABLE lifecycle_operations UPDATE deleted = 1 WHERE kind = 'disposal' SETTINGS mutations_sync = 2")
    client.command("ALTER TABLE lifecycle_records UPDATE hash = 'edited' WHERE operation_id != 'forged' "
                   "AND record_kind = 'review' SETTINGS mutations_sync = 2")
    details = [p.detail for p in verify(client, key=KEY).problems if p.kind == "forged_removal"]
    assert any("do not match its digest" in d for d in details)


def test_holds_on_a_subject_a_flow_type_and_a_query_result_are_recorded_and_listed(aged):
    store, short, long = aged
    client = store.client
    subject = pseudonym("applicant-1")
    runner = CliRunner()
    base = ["hold", "add", "--dsn", store.dsn, "--reason", "litigation", "--reference", "CASE-9", "--by", "legal-2"]
    assert runner.invoke(app, [*base, "--subject", subject]).exit_code == 0
    out = runner.invoke(app, [*base, "--query", "decisions_by_data_source", "--param", "source=bureau"])
    assert out.exit_code == 2 and "holds nothing" in " ".join(out.output.split())
    both = runner.invoke(app, [*base, "--subject", subject, "--decision-type", "credit.approval"])
    assert both.exit_code == 2 and "exactly one of" in both.output
    active = lifecycle.active_holds(client)
    assert [(h.scope, h.target, h.reference, h.actor) for h in active] == [("subject", subject, "CASE-9", "legal-2")]
    listed = runner.invoke(app, ["hold", "list", "--dsn", store.dsn, "--format", "json"])
    assert json.loads(listed.output)[0]["target"] == subject
    later = TODAY + timedelta(days=31 * 30)
    due = {r["decision_id"] for r in rows(client, "retention_due", as_of=later.isoformat())}
    assert due == {short[0].id, short[2].id, short[3].id}  # applicant-1's short record is held
    # a catalogue query's result: every decision it returns, recorded with the query and its parameters
    by_query = runner.invoke(app, [*base, "--query", "retention_due", "--param", f"as_of={later.isoformat()}"])
    assert by_query.exit_code == 0, by_query.output
    held = [h for h in lifecycle.active_holds(client) if h.scope == "decision"]
    assert sorted(h.target for h in held) == sorted(due) and held[0].source.startswith("query retention_due {")
    assert rows(client, "retention_due", as_of=later.isoformat()) == []
    released = runner.invoke(app, ["hold", "release", held[0].hold_id, "--by", "legal-2", "--reason", "settled",
                                   "--dsn", store.dsn])
    assert released.exit_code == 0 and "3 target(s)" in released.output
    history = runner.invoke(app, ["hold", "list", "--all", "--dsn", store.dsn, "--format", "json"])
    assert [(h["action"], h["targets"]) for h in json.loads(history.output)] == [("place", 1), ("place", 3), ("release", 1)]


# --- erasure -------------------------------------------------------------------------------------------
def test_erasure_outcome__no_way_to_find_the_erased_records_and_the_held_ones_kept(tmp_path):
    store = RecordStore(tmp_path, "erasure")
    client = store.client
    raw = "applicant-4711"
    subject = pseudonym(raw)
    with_flow = otel_decisions.record_decision  # noqa: F841 - the capture API, as a task would call it
    erasable = [record(retention_class="standard", subject_id=raw, outcome=o) for o in ("approve", "deny")]
    obliged = record(retention_class="finra-6y", subject_id=raw)
    held = record(retention_class="standard", subject_id=raw, outcome="refer")
    other = record(retention_class="standard", subject_id="applicant-1")
    otel_decisions.record_review(erasable[1], reviewer="analyst-2", action="override", new_outcome="approve",
                                 reason="income verified")
    otel_decisions.record_notice(erasable[1], channel="mail", sent_by="ops-1", reference="LTR-1")
    store.store()
    lifecycle.place_hold(client, "decision", [held.id], reason="dispute", reference="CASE-12", actor="legal")

    out = CliRunner().invoke(app, ["erase", subject, "--request", "DSR-2026-114", "--by", "dpo-1", "--dsn", store.dsn,
                                   "--format", "json"], env={"OTEL_DECISIONS_HMAC_KEY": TEST_HMAC_KEY})
    assert out.exit_code == 0, out.output
    # no row anywhere finds an erased record from the identifier (raw or pseudonymised)
    remaining = stored_ids(client)
    assert remaining == {obliged.id, held.id, other.id}
    for needle in (raw, subject):
        assert client.command(
            f"SELECT count() FROM otel_traces WHERE arrayExists(v -> position(v, '{needle}') > 0, "
            "mapValues(SpanAttributes)) AND SpanAttributes['decision.id'] NOT IN "
            f"('{obliged.id}', '{held.id}')") == 0
        for table in ("lifecycle_records", "lifecycle_operations", "legal_holds"):
            text = client.query(f"SELECT * FROM {table}").result_rows
            assert needle not in str(text), table
    assert stored_ids(client, "decision_reviews") == set() and stored_ids(client, "decision_events") == set()
    assert {r["decision_id"] for r in rows(client, "subject_decisions", subject_id=subject)} == {obliged.id, held.id}

    answer = {r["decision_id"]: r for r in rows(client, "erasure_outcome", request="DSR-2026-114")}
    assert {d: r["outcome"] for d, r in answer.items()} == {
        erasable[0].id: "made unlinkable", erasable[1].id: "made unlinkable", obliged.id: "kept", held.id: "kept"}
    assert answer[erasable[1].id]["records_removed"] == 3  # the decision, its review and its notice
    assert answer[obliged.id]["kept_under"].startswith("GDPR Art. 17(3)(b): FINRA Rule 4511(b)")
    assert answer[held.id]["kept_under"].startswith("GDPR Art. 17(3)(e): legal hold") and "CASE-12" in answer[held.id]["kept_under"]
    assert {r["erased_by"] for r in answer.values()} == {"dpo-1"}
    assert verify(client, key=KEY).ok


# --- corrections, notices, as-of ------------------------------------------------------------------------
def test_decision_as_of(tmp_path):
    store = RecordStore(tmp_path, "asof")
    client = store.client
    decision = record(outcome="deny", inputs={"income": 41_000, "ssn": "078-05-1120"})
    store.store()
    before = datetime.now(UTC)
    otel_decisions.record_correction(decision, field="inputs.income", value=52_000, corrected_by="analyst-4",
                                     reason="payslip received", reference="TCK-88")
    otel_decisions.record_correction(decision, field="inputs.ssn", value="078-05-1121", corrected_by="analyst-4",
                                     reason="typo")
    otel_decisions.record_review(decision, reviewer="analyst-5", action="override", new_outcome="approve",
                                 reason="corrected income passes")
    store.store()
    report = verify(client, key=KEY)
    assert report.ok and report.checked == 4  # the corrections are chain links, not tampering

    as_before = rows(client, "decision_as_of", decision_id=decision.id, at=before.isoformat())
    as_now = rows(client, "decision_as_of", decision_id=decision.id)
    value = lambda result, field: {r["field"]: r["value_as_of"] for r in result}[field]  # noqa: E731
    assert value(as_before, "outcome") == "deny" and value(as_now, "outcome") == "approve"
    assert value(as_now, "inputs.income") == "52000" and value(as_before, "inputs.income") == "41000"
    assert json.loads(value(as_now, "inputs"))["income"] == 41_000  # the original is unchanged
    changes = [(r["change"], r["field"], r["in_effect"]) for r in as_before if r["change"] != "recorded"]
    assert changes == [("correction", "inputs.income", False), ("correction", "inputs.ssn", False),
                       ("review: override", "outcome", False)]
    correction = next(r for r in as_now if r["field"] == "inputs.income")
    assert (correction["original_value"], correction["new_value"], correction["reference"]) == ("41000", "52000", "TCK-88")
    assert correction["actor_id"] == pseudonym("analyst-4")
    ssn = next(r for r in as_now if r["field"] == "inputs.ssn")  # a masked key stays masked in its correction
    assert "078-05" not in ssn["new_value"] + ssn["original_value"] and ssn["new_value"] == "[REDACTED]"
    with pytest.raises(otel_decisions.errors.DecisionValidationError, match="field"):
        otel_decisions.record_correction(decision, field="colour", value=1, corrected_by="a", reason="r")


def test_adverse_action_notices(tmp_path):
    store = RecordStore(tmp_path, "notices")
    client = store.client
    on_time = record(outcome="deny", reasons=["a", "b", "c", "d", "e"], automation="automated")
    late = record(outcome="deny", automation="automated")
    missing = record(outcome="deny", automation="automated")
    record(outcome="approve")  # not adverse
    record(outcome="deny", automation="human_in_loop")  # not solely automated
    otel_decisions.record_notice(on_time, channel="mail", sent_by="ops", reference="LTR-1")
    decided = datetime.fromtimestamp(late.timestamp_ns / 1e9, UTC)
    otel_decisions.record_notice(late, channel="email", sent_by="ops", sent_at=decided + timedelta(days=45))
    store.store()
    got = {r["decision_id"]: r for r in rows(client, "adverse_action_notices")}
    assert set(got) == {on_time.id, late.id, missing.id}
    assert [got[on_time.id][f"principal_reason_{i}"] for i in range(1, 5)] == ["a", "b", "c", "d"]
    assert (got[on_time.id]["notice_status"], got[on_time.id]["notice_channel"]) == ("on time", "mail")
    assert got[late.id]["notice_status"] == "late" and 44.9 < got[late.id]["days_to_notice"] < 45.1
    assert got[missing.id]["notice_status"] == "pending" and got[missing.id]["notice_sent_at"] is None
    past = rows(client, "adverse_action_notices", max_days=0)  # a 0-day deadline has passed for the one without
    assert {r["decision_id"]: r["notice_status"] for r in past}[missing.id] == "missing"


# --- the attributes the questions need -----------------------------------------------------------------
def test_automated_without_legal_basis(tmp_path):
    store = RecordStore(tmp_path, "basis")
    bare = record(automation="automated", regulations=["GDPR-22"])
    record(automation="automated", regulations=["GDPR-22"], legal_basis="contract")
    record(automation="human_in_loop", regulations=["GDPR-22"])
    record(automation="automated", regulations=["FINRA-4511"])
    typed = record(type="fraud.block", automation="automated")
    store.store()
    assert [r["decision_id"] for r in rows(store.client, "automated_without_legal_basis")] == [bare.id]
    listed = rows(store.client, "automated_without_legal_basis", significant_types=["fraud.block"])
    assert [r["decision_id"] for r in listed] == [bare.id, typed.id]
    with pytest.raises(otel_decisions.errors.DecisionValidationError, match="legal_basis"):
        record(legal_basis="because")


def test_decisions_by_data_source(tmp_path):
    store = RecordStore(tmp_path, "sources")
    a = record(data_sources=["credit-bureau", "application-form"], dataset_versions=["bureau@2026-11-30"])
    b = record(data_sources=["application-form"], dataset_versions=["bureau@2026-10-31"])
    record()
    store.store()
    assert [r["decision_id"] for r in rows(store.client, "decisions_by_data_source", source="credit-bureau")] == [a.id]
    by_version = rows(store.client, "decisions_by_data_source", dataset_version="bureau@2026-10-31")
    assert [(r["decision_id"], r["data_sources"]) for r in by_version] == [(b.id, ["application-form"])]
    assert rows(store.client, "decisions_by_data_source") == []


def test_subject_decisions__lifecycle_columns(tmp_path):
    store = RecordStore(tmp_path, "subject")
    d = record(subject_id="applicant-9", legal_basis="contract", data_sources=["credit-bureau"],
               dataset_versions=["bureau@2026-11-30"], retention_class="finra-6y", automation="automated")
    otel_decisions.record_correction(d, field="outcome", value="approve", corrected_by="analyst", reason="rule error")
    store.store()
    lifecycle.place_hold(store.client, "subject", [pseudonym("applicant-9")], reason="r", reference="C-1", actor="l")
    (row,) = rows(store.client, "subject_decisions", subject_id=pseudonym("applicant-9"))
    day = datetime.fromtimestamp(d.timestamp_ns / 1e9, UTC).date()
    assert (row["legal_basis"], row["data_sources"], row["dataset_versions"]) == ("contract", ["credit-bureau"],
                                                                                 ["bureau@2026-11-30"])
    assert (row["retention_until"], row["on_hold"], row["corrections"]) == (add_months(day, 72), True, 1)
    assert row["retention_basis"].startswith("FINRA Rule 4511(b)") and row["automation"] == "automated"


def test_score_drift_incidents(tmp_path):
    store = RecordStore(tmp_path, "incidents")
    client = store.client
    first = [record(score=0.4, model_version="2.0") for _ in range(3)]
    other = record(score=0.9, model_version="1.1")
    store.store()
    opened = datetime.fromtimestamp(first[0].timestamp_ns / 1e9, UTC) - timedelta(seconds=1)
    incident = lifecycle.open_incident(client, "bureau feed shift", "credit-scorer", "2.0", actor="mrm",
                                       opened_at=opened)
    late = record(score=0.8, model_version="2.0")
    store.store()
    lifecycle.close_incident(client, incident, actor="mrm",
                             closed_at=datetime.fromtimestamp(late.timestamp_ns / 1e9, UTC) - timedelta(microseconds=1))
    got = {(r["model_version"]): r for r in rows(client, "score_drift_incidents")}
    assert got["2.0"]["decisions"] == 4 and got["2.0"]["in_incident"] == 3 and got["2.0"]["incident_ids"] == [incident]
    assert got["2.0"]["mean_score"] == round((0.4 * 3 + 0.8) / 4, 4)
    assert got["1.1"]["in_incident"] == 0 and got["1.1"]["incident_ids"] == []
    assert other.id  # recorded in the same week, another version: outside the incident


# --- access audit ----------------------------------------------------------------------------------------
def test_access_audit(tmp_path):
    store = RecordStore(tmp_path, "access")
    triage = record(subject_id="patient-1", type="clinical.triage", outcome="urgent",
                    regulations=["HIPAA-164.312(b)"], retention_class="hipaa-6y", model_name="triage-net",
                    model_version="3.2")
    record(subject_id="applicant-2")
    store.store()
    runner = CliRunner()
    patient = pseudonym("patient-1")
    read = runner.invoke(app, ["query", "run", "subject_decisions", "--param", f"subject_id={patient}", "--dsn",
                               store.dsn, "--format", "csv"])
    assert read.exit_code == 0, read.output
    runner.invoke(app, ["query", "run", "subject_decisions", "--param", f"subject_id={pseudonym('applicant-2')}",
                        "--dsn", store.dsn])
    got = [r for r in rows(store.client, "access_audit", subject_id=patient) if r["source"] == "otel-decisions"]
    assert len(got) == 1
    (entry,) = got
    assert (entry["db_user"], entry["command"], entry["query_name"], entry["rows"], entry["phi_rows"]) == (
        "otel_reader", "query run", "subject_decisions", 1, 1)
    assert entry["export_format"] == "csv" and entry["phi"] == "yes" and entry["subject_ids"] == [patient]
    phi = [r for r in rows(store.client, "access_audit", phi_only=True) if r["source"] == "otel-decisions"]
    assert [r["subject_ids"] for r in phi] == [[patient]]  # the applicant's read returned no PHI
    # an export of the patient's trace is a PHI export
    exported = runner.invoke(app, ["export-trace", triage.trace_id, "--dsn", store.dsn, "--output",
                                   str(tmp_path / "t.json")])
    assert exported.exit_code == 0, exported.output
    phi = [r for r in rows(store.client, "access_audit", phi_only=True) if r["source"] == "otel-decisions"]
    assert [(r["command"], r["export_format"], r["phi_rows"]) for r in phi][-1] == ("export-trace", "otlp-json", 1)


def test_migration_5_upgrades_a_store_whose_decisions_already_carry_the_new_attributes(tmp_path):
    from otel_decisions.store import schema
    from otel_decisions.store.client import get_client
    from otel_decisions.store.exporter import ClickHouseSpanExporter

    from .seed import fresh_chdb_dsn

    dsn = fresh_chdb_dsn("upgrade")
    client = get_client(dsn, role="admin")
    client.command(schema._migrations_table_sql(client.database, None))
    for migration in schema.migrations(client.database)[:4]:  # a store of the previous release
        for statement in migration.statements:
            client.command(statement)
        client.insert(f"{client.database}.schema_migrations", [[migration.version, migration.name, migration.checksum]],
                      column_names=["version", "name", "checksum"])
    store = RecordStore(tmp_path, "upgrade-capture")  # records with this release's attributes
    decision = record(retention_class="hipaa-6y", legal_basis="law", data_sources=["lab"])
    otel_decisions.force_flush()
    exporter = ClickHouseSpanExporter(client=client, ensure_schema=False)  # (a writer client would migrate first)
    assert exporter.export(store.memory.get_finished_spans()).name == "SUCCESS"
    assert "retention_until" not in {r[0] for r in client.query("DESCRIBE TABLE decisions").result_rows}
    assert [m.version for m in schema.apply_migrations(client)] == [5]
    ((until, basis, sources),) = client.query(
        "SELECT retention_until, legal_basis, data_sources FROM decisions FINAL").result_rows
    assert until == add_months(datetime.fromtimestamp(decision.timestamp_ns / 1e9, UTC).date(), 72)
    assert (basis, sources) == ("law", ["lab"])
    report = verify(client, key=KEY)
    assert report.ok, report.problems


@pytest.mark.slow
def test_erasure_outcome__removes_the_prefect_task_run_spans_of_the_erased_decisions(tmp_path):
    """Real Prefect task runs: the erased applicant's task-run span (which carried the task's parameters) goes
    with the decision; the other applicant's task run and decision stay; verify still passes."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from otel_decisions.store.client import get_client

    script = Path(__file__).parent / "apps" / "erasure_flow.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PREFECT_"))}
    env.update({
        "OTEL_DECISIONS_DATA_DIR": str(tmp_path / "data"),
        "OTEL_DECISIONS_HMAC_KEY": TEST_HMAC_KEY,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "CRITICAL",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    })
    ran = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-4000:]
    dsn = f"chdb://{tmp_path / 'data' / 'chdb'}"
    client = get_client(dsn, role="admin")
    try:
        subject, other = pseudonym("APP-90001"), pseudonym("APP-90002")
        runs = dict(client.query("SELECT subject_id, task_run_id FROM decisions FINAL").result_rows)
        assert set(runs) == {subject, other} and all(runs.values())
        run_spans = ("SELECT count() FROM otel_traces WHERE SpanAttributes['prefect.run.type'] = 'task' "
                     "AND SpanAttributes['prefect.run.id'] = '{}'")
        assert client.command(run_spans.format(runs[subject])) == 1 == client.command(run_spans.format(runs[other]))
        out = CliRunner().invoke(app, ["erase", subject, "--request", "DSR-9", "--by", "dpo", "--dsn", dsn],
                                 env={"OTEL_DECISIONS_HMAC_KEY": TEST_HMAC_KEY})
        assert out.exit_code == 0, out.output
        assert client.command(run_spans.format(runs[subject])) == 0
        assert client.command(run_spans.format(runs[other])) == 1
        assert client.command(
            f"SELECT count() FROM otel_traces WHERE has(mapValues(SpanAttributes), '{runs[subject]}')") == 0
        assert [r[0] for r in client.query("SELECT subject_id FROM decisions FINAL").result_rows] == [other]
        text = str(client.query("SELECT SpanName, SpanAttributes FROM otel_traces").result_rows)
        for raw in ("APP-90001", "Ilse", "Marrowby", subject):
            assert raw not in text, raw
        assert verify(client, key=KEY).ok
    finally:
        client.close()


def test_a_removal_that_is_unsigned_or_signed_with_another_key_is_forged(aged):
    """An admin who deletes records and writes tombstones with a valid digest but no signature (or another key's)
    does not pass verify; neither does a tombstone for a record that is still stored with another hash."""
    from otel_decisions.integrity import links_digest

    store, short, long = aged
    client = store.client
    victim = long[1].id
    links = client.query(
        "SELECT SpanAttributes['decision.integrity.chain'], toInt64(SpanAttributes['decision.integrity.seq']), "
        "SpanAttributes['decision.integrity.hash'], SpanAttributes['decision.integrity.prev_hash'] "
        f"FROM otel_traces WHERE SpanAttributes['decision.id'] = '{victim}' LIMIT 1").result_rows
    columns = ["operation_id", "kind", "action", "record_kind", "record_id", "decision_id", "chain", "seq", "hash",
               "prev_hash", "at"]
    client.insert("lifecycle_records", [["op-x", "disposal", "deleted", "decision", victim, victim, *links[0],
                                         datetime.now(UTC)]], column_names=columns)
    for signer in ("", "not-our-key"):
        client.command("TRUNCATE TABLE lifecycle_operations")
        client.insert("lifecycle_operations", [["op-x", "disposal", datetime.now(UTC), "intruder", "r", "{}", 1, 0,
                                                links_digest(links), "ab" * 32 if signer else "", signer]],
                      column_names=["operation_id", "kind", "at", "actor", "request", "detail", "deleted", "kept",
                                    "digest", "signature", "key_id"])
        client.command(f"DELETE FROM otel_traces WHERE SpanAttributes['decision.id'] = '{victim}'")
        client.command(f"DELETE FROM decisions WHERE decision_id = '{victim}'")
        problems = [(p.kind, p.detail) for p in verify(client).problems]  # even a verifier without the key
        assert [k for k, _d in problems] == ["forged_removal"], problems
        assert ("is not signed" if not signer else "is signed with key 'not-our-key'") in problems[0][1]
    with pytest.raises(otel_decisions.errors.OtelDecisionsError, match="must be signed"):
        lifecycle.apply_retention(client, actor="rm", key=None, as_of=TODAY + timedelta(days=31 * 30))


def test_a_removed_record_delivered_again_is_reported_and_removed_again(aged):
    store, short, long = aged
    client = store.client
    later = TODAY + timedelta(days=31 * 30)
    spans = [s for s in store.exported if s.attributes.get("decision.id") == short[1].id]
    lifecycle.apply_retention(client, actor="rm", key=KEY, as_of=later)
    assert verify(client, key=KEY).ok
    from otel_decisions.store.exporter import ClickHouseSpanExporter

    assert ClickHouseSpanExporter(client=client).export(spans).name == "SUCCESS"  # a late retry of the batch
    assert short[1].id in stored_ids(client)
    assert [p.kind for p in verify(client, key=KEY).problems] == ["resurrected"]
    again = lifecycle.apply_retention(client, actor="rm", key=KEY, as_of=later)
    assert again.swept >= 2 and short[1].id not in stored_ids(client)  # the span and its typed row
    assert verify(client, key=KEY).ok


def test_a_subject_is_named_by_its_pseudonym_and_a_correction_of_it_is_pseudonymised(tmp_path):
    store = RecordStore(tmp_path, "subjects")
    d = record(subject_id="APP-31337")
    otel_decisions.record_correction(d, field="subject_id", value="APP-99999", corrected_by="analyst", reason="typo")
    store.store()
    ((old, new),) = store.client.query("SELECT original_value, new_value FROM decision_events FINAL").result_rows
    assert (old, new) == (pseudonym("APP-31337"), pseudonym("APP-99999"))
    runner = CliRunner()
    held = runner.invoke(app, ["hold", "add", "--subject", "APP-31337", "--reason", "r", "--reference", "C",
                               "--by", "legal", "--dsn", store.dsn])
    assert held.exit_code == 2 and "pseudonymise RAW_ID" in " ".join(held.output.split())
    erased = runner.invoke(app, ["erase", "APP-31337", "--request", "R", "--by", "dpo", "--dsn", store.dsn],
                           env={"OTEL_DECISIONS_HMAC_KEY": TEST_HMAC_KEY})
    assert erased.exit_code == 2 and "not a pseudonymised subject id" in " ".join(erased.output.split())
    typo = runner.invoke(app, ["hold", "add", "--flow-run", "no-such-run", "--reason", "r", "--reference", "C",
                               "--by", "legal", "--dsn", store.dsn])
    assert typo.exit_code == 2 and "no stored decision has flow_run_id 'no-such-run'" in " ".join(typo.output.split())
    assert store.client.command("SELECT count() FROM legal_holds") == 0


def test_fast_reviews__a_comment_is_not_oversight(tmp_path):
    store = RecordStore(tmp_path, "comments")
    commented = record(model_version="9.9")
    otel_decisions.record_review(commented, reviewer="analyst-1", action="comment", reason="looked at it")
    reviewed = record(model_version="9.9")
    otel_decisions.record_review(reviewed, reviewer="analyst-2", action="approve", reason="checked")
    store.store()
    client = store.client
    assert [r["decision_id"] for r in rows(client, "fast_reviews")] == [reviewed.id]
    assert [(r["reviewer_id"], r["reviews"]) for r in rows(client, "override_rate_by_reviewer")] == [
        (pseudonym("analyst-2"), 1)]
    (by_model,) = rows(client, "override_rate_by_model")
    assert (by_model["decisions"], by_model["reviewed"]) == (2, 1)
    (oversight,) = rows(client, "human_oversight_by_model")
    assert oversight["reviewed"] == 1


def test_correct_and_notice_from_the_command_line_are_chain_records(tmp_path):
    store = RecordStore(tmp_path, "cli-events")
    d = record(outcome="deny")
    store.store()
    runner = CliRunner()
    env = {"OTEL_DECISIONS_HMAC_KEY": TEST_HMAC_KEY, "OTEL_DECISIONS_DATA_DIR": str(tmp_path / "cli")}
    fixed = runner.invoke(app, ["correct", d.id, "--field", "outcome", "--value", "approve", "--original", "deny",
                                "--reason", "rule applied wrongly", "--by", "analyst-7", "--dsn", store.dsn], env=env)
    assert fixed.exit_code == 0, fixed.output
    sent = runner.invoke(app, ["notice", d.id, "--channel", "email", "--by", "ops", "--sent-at", "2026-12-01T09:00:00Z",
                               "--reference", "AAN-1", "--dsn", store.dsn], env=env)
    assert sent.exit_code == 0, sent.output
    got = store.client.query("SELECT type, field, original_value, new_value, channel, reference, "
                             "fromUnixTimestamp64Nano(effective_at_ns) FROM decision_events FINAL ORDER BY type").result_rows
    assert [r[:6] for r in got] == [("correction", "outcome", "deny", "approve", "", ""),
                                    ("notice", "", "", "", "email", "AAN-1")]
    assert got[1][6].replace(tzinfo=None) == datetime(2026, 12, 1, 9, 0)
    report = verify(store.client, key=KEY)
    assert report.ok, report.problems
    assert report.checked == 3  # the decision, the correction and the notice are links of the chain
    bad = runner.invoke(app, ["correct", d.id, "--field", "colour", "--value", "1", "--reason", "r", "--by", "a",
                              "--dsn", store.dsn], env=env)
    assert bad.exit_code == 2 and "not a decision field" in bad.output
