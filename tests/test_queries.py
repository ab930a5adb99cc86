"""Every catalogue query on real chDB over a seeded data set, checked against answers computed in Python.

The seed (tests/seed.py) writes real SDK spans through ClickHouseSpanExporter, re-delivers some
decision spans, and returns the plain records; each test derives the expected rows from those
records independently of SQL.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from otel_decisions.store.approvals import approve_model
from otel_decisions.store.client import get_client
from otel_decisions.catalogue import QueryError, load_catalogue, parse_query_file, run_query
from tests.seed import SEED_CHAIN, ADVERSE_OUTCOMES, SEED_START, fresh_chdb_dsn, seed_decisions

N = 400


@pytest.fixture(scope="module")
def store():
    client = get_client(fresh_chdb_dsn("queries"), role="admin")
    data = seed_decisions(client, n=N, seed=11, redeliver=30)
    # Approvals: 1.0 and 3.2 approved throughout, 1.1 only for the first four weeks, 2.0 / 3.3 never.
    approve_model(client, "credit-scorer", "1.0", approved_by="mrm", approved_from=SEED_START - timedelta(days=1))
    approve_model(
        client,
        "credit-scorer",
        "1.1",
        approved_by="mrm",
        approved_from=SEED_START,
        approved_until=SEED_START + timedelta(days=28),
    )
    approve_model(client, "triage-net", "3.2", approved_by="clinical-safety", approved_from=SEED_START - timedelta(days=1))
    yield client, data
    client.close()


def run(client, name, **params):
    return run_query(client, name, params).as_dicts()


def naive(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc).replace(tzinfo=None)


def reviews_by_decision(data):
    grouped = defaultdict(list)
    for review in data.reviews:
        grouped[review.decision_id].append(review)
    for reviews in grouped.values():
        reviews.sort(key=lambda r: r.timestamp_ns)
    return grouped


# --- catalogue shape ---------------------------------------------------------------------------
def test_catalogue_has_sixteen_or_more_valid_queries_each_run_by_a_test():
    catalogue = load_catalogue()
    assert len(catalogue) >= 16
    import re

    tested = {
        name.split("__")[0]
        for path in Path(__file__).parent.glob("test_*.py")
        for name in re.findall(r"^def test_(\w+)\(", path.read_text(), re.M)
    }
    missing = [name for name in catalogue if name not in tested]
    assert not missing, f"queries without a test: {missing}"
    for query in catalogue.values():
        assert query.title and query.description and query.regulations


def test_a_query_file_without_header_is_rejected(tmp_path: Path):
    bare = tmp_path / "bare.sql"
    bare.write_text("SELECT 1\n")
    with pytest.raises(QueryError, match="header lacks name, title, description, regulations"):
        parse_query_file(bare)
    undeclared = tmp_path / "undeclared.sql"
    undeclared.write_text(
        "-- name: undeclared\n-- title: t\n-- description: d\n-- regulations: GDPR-15\n"
        "SELECT {x:String}\n"
    )
    with pytest.raises(QueryError, match="differ from the header"):
        parse_query_file(undeclared)
    wrong_name = tmp_path / "wrong.sql"
    wrong_name.write_text("-- name: other\n-- title: t\n-- description: d\n-- regulations: r\nSELECT 1\n")
    with pytest.raises(QueryError, match="must equal the file name"):
        parse_query_file(wrong_name)
    with pytest.raises(QueryError, match="header lacks"):
        load_catalogue(tmp_path)


def test_seed_counts_each_decision_once_despite_redelivery(store):
    client, data = store
    assert data.redelivered == 30
    assert client.command("SELECT count() FROM decisions FINAL") == N
    assert client.command("SELECT count() FROM otel_traces WHERE startsWith(SpanName, 'decision ')") == N + 30


# --- one test per query -----------------------------------------------------------------------
def test_adverse_action_reasons(store):
    client, data = store
    rows = run(client, "adverse_action_reasons")
    expected = sorted((d for d in data.decisions if d.outcome in ADVERSE_OUTCOMES), key=lambda d: (d.timestamp_ns, d.decision_id))
    assert [r["decision_id"] for r in rows] == [d.decision_id for d in expected]
    for row, decision in zip(rows, expected):
        padded = (decision.reasons + ["", "", "", ""])[:4]
        assert [row[f"principal_reason_{i}"] for i in range(1, 5)] == padded
        assert row["reason_count"] == len(decision.reasons)
        assert row["model_version"] == decision.model_version
    # period and type filters
    end = SEED_START + timedelta(days=14)
    rows = run(client, "adverse_action_reasons", end=end.strftime("%Y-%m-%d"), decision_type="credit.approval")
    assert {r["decision_id"] for r in rows} == {
        d.decision_id for d in expected if d.timestamp < end and d.decision_type == "credit.approval"
    }


def test_adverse_reason_frequency(store):
    client, data = store
    cited, first = Counter(), Counter()
    for d in data.decisions:
        if d.outcome in ADVERSE_OUTCOMES:
            cited.update(d.reasons)
            if d.reasons:
                first[d.reasons[0]] += 1
    rows = run(client, "adverse_reason_frequency")
    assert {r["reason"]: (r["times_cited"], r["times_first"]) for r in rows} == {k: (v, first[k]) for k, v in cited.items()}
    assert [r["times_cited"] for r in rows] == sorted((r["times_cited"] for r in rows), reverse=True)


def test_subject_decisions(store):
    client, data = store
    counts = Counter(d.subject_id for d in data.decisions)
    subject = max(counts, key=lambda s: (counts[s], s))
    grouped = reviews_by_decision(data)
    expected = sorted((d for d in data.decisions if d.subject_id == subject), key=lambda d: (d.timestamp_ns, d.decision_id))
    rows = run(client, "subject_decisions", subject_id=subject)
    assert [r["decision_id"] for r in rows] == [d.decision_id for d in expected]
    for row, decision in zip(rows, expected):
        reviews = grouped.get(decision.decision_id, [])
        assert row["inputs_digest"] == decision.inputs_digest
        assert row["rationale"] == decision.rationale
        assert row["reasons"] == decision.reasons
        assert row["model_version"] == decision.model_version
        assert row["review_count"] == len(reviews)
        assert row["final_outcome"] == (reviews[-1].new_outcome if reviews else decision.outcome)
    assert run(client, "subject_decisions", subject_id="nobody") == []


def test_unreviewed_low_confidence(store):
    client, data = store
    reviewed = {r.decision_id for r in data.reviews}
    expected = {
        d.decision_id
        for d in data.decisions
        if (d.review_required or (d.confidence is not None and d.confidence < 0.6)) and d.decision_id not in reviewed
    }
    rows = run(client, "unreviewed_low_confidence")
    assert {r["decision_id"] for r in rows} == expected and expected
    # a borderline-score margin adds decisions near the threshold
    margin = run(client, "unreviewed_low_confidence", threshold_margin=0.05, min_confidence=0.0)
    assert {r["decision_id"] for r in margin} == {
        d.decision_id
        for d in data.decisions
        if (d.review_required or abs(d.score - d.threshold) < 0.05) and d.decision_id not in reviewed
    }


def test_override_rate_by_model(store):
    client, data = store
    grouped = reviews_by_decision(data)
    stats: dict = defaultdict(lambda: [0, 0, 0])
    for d in data.decisions:
        entry = stats[(d.model_name, d.model_version)]
        entry[0] += 1
        reviews = grouped.get(d.decision_id, [])
        entry[1] += bool(reviews)
        entry[2] += any(r.action == "override" for r in reviews)
    rows = run(client, "override_rate_by_model")
    assert {(r["model_name"], r["model_version"]): [r["decisions"], r["reviewed"], r["overridden"]] for r in rows} == {
        k: v for k, v in stats.items()
    }
    for r in rows:
        assert r["override_rate"] == pytest.approx(r["overridden"] / r["decisions"], abs=1e-4)


def test_override_rate_by_reviewer(store):
    client, data = store
    reviews, overrides = Counter(), Counter()
    for r in data.reviews:
        reviews[r.reviewer_id] += 1
        overrides[r.reviewer_id] += r.action == "override"
    rows = run(client, "override_rate_by_reviewer")
    assert {r["reviewer_id"]: (r["reviews"], r["overrides"]) for r in rows} == {k: (v, overrides[k]) for k, v in reviews.items()}


def test_overrides(store):
    client, data = store
    expected = {r.review_id: r for r in data.reviews if r.action == "override"}
    rows = run(client, "overrides")
    assert {r["review_id"] for r in rows} == set(expected) and expected
    for row in rows:
        review = expected[row["review_id"]]
        assert (row["original_outcome"], row["new_outcome"], row["reviewer_id"]) == (
            review.original_outcome,
            review.new_outcome,
            review.reviewer_id,
        )
        assert row["original_outcome"] != row["new_outcome"]


def test_fast_reviews(store):
    client, data = store
    decided = {d.decision_id: d.timestamp_ns for d in data.decisions}
    expected = {r.review_id for r in data.reviews if (r.timestamp_ns - decided[r.decision_id]) / 1e9 < 10}
    rows = run(client, "fast_reviews")
    assert {r["review_id"] for r in rows} == expected and expected
    assert all(r["seconds_to_review"] < 10 for r in rows)
    assert len(run(client, "fast_reviews", max_seconds=1)) < len(rows)


def test_unapproved_model_decisions(store):
    client, data = store
    cutoff = SEED_START + timedelta(days=28)

    def approved(d):
        if (d.model_name, d.model_version) in {("credit-scorer", "1.0"), ("triage-net", "3.2")}:
            return True
        return (d.model_name, d.model_version) == ("credit-scorer", "1.1") and d.timestamp < cutoff

    rows = run(client, "unapproved_model_decisions")
    assert {r["decision_id"] for r in rows} == {d.decision_id for d in data.decisions if not approved(d)}
    assert {(r["model_name"], r["model_version"]) for r in rows} == {
        ("credit-scorer", "1.1"),
        ("credit-scorer", "2.0"),
        ("triage-net", "3.3"),
    }


def test_missing_rationale(store):
    client, data = store
    rows = run(client, "missing_rationale")
    expected = {d.decision_id: d for d in data.decisions if not d.rationale or not d.reasons}
    assert {r["decision_id"] for r in rows} == set(expected) and expected
    for row in rows:
        assert bool(row["missing_rationale"]) == (expected[row["decision_id"]].rationale == "")
        assert bool(row["missing_reasons"]) == (not expected[row["decision_id"]].reasons)


def test_confidence_drift_weekly(store):
    client, data = store
    groups = defaultdict(list)
    for d in data.decisions:
        if d.confidence is not None:
            monday = (d.timestamp - timedelta(days=d.timestamp.weekday())).date()
            groups[(d.model_name, d.model_version, monday)].append(d.confidence)
    rows = run(client, "confidence_drift_weekly")
    assert {(r["model_name"], r["model_version"], r["week"]): r["decisions"] for r in rows} == {
        k: len(v) for k, v in groups.items()
    }
    previous = {}
    for row in rows:
        key = (row["model_name"], row["model_version"], row["week"])
        assert row["mean_confidence"] == pytest.approx(sum(groups[key]) / len(groups[key]), abs=1e-4)
        series = (row["model_name"], row["model_version"])
        if series in previous:
            assert row["change_from_previous_week"] == pytest.approx(row["mean_confidence"] - previous[series], abs=1e-3)
        else:
            assert row["change_from_previous_week"] is None
        previous[series] = row["mean_confidence"]


def test_flow_run_audit_trail(store):
    client, data = store
    flow_run = data.decisions[0].flow_run_id
    in_run = {d.decision_id for d in data.decisions if d.flow_run_id == flow_run}
    reviews = [r for r in data.reviews if r.decision_id in in_run]
    rows = run(client, "flow_run_audit_trail", flow_run_id=flow_run)
    assert Counter(r["entry"] for r in rows) == Counter({"decision": len(in_run), "review": len(reviews)})
    assert {r["decision_id"] for r in rows if r["entry"] == "decision"} == in_run
    assert {r["review_id"] for r in rows if r["entry"] == "review"} == {r.review_id for r in reviews}
    assert [r["timestamp"] for r in rows] == sorted(r["timestamp"] for r in rows)
    assert all(r["integrity_hash"] for r in rows if r["entry"] == "decision")


def test_outcome_rates_by_segment(store):
    client, data = store
    totals, favourable = Counter(), Counter()
    for d in data.decisions:
        if d.decision_type == "credit.approval":
            totals[d.segment] += 1
            favourable[d.segment] += d.outcome == "approve"
    rates = {s: favourable[s] / totals[s] for s in totals}
    best = max(rates.values())
    rows = run(client, "outcome_rates_by_segment")
    assert {r["segment"]: (r["decisions"], r["favourable"]) for r in rows} == {s: (totals[s], favourable[s]) for s in totals}
    for row in rows:
        assert row["adverse_impact_ratio"] == pytest.approx(rates[row["segment"]] / best, abs=2e-3)
        assert bool(row["below_four_fifths"]) == (row["adverse_impact_ratio"] < 0.8)
    assert any(row["below_four_fifths"] for row in rows)  # the seed biases 18-25 against approval


def test_completeness_missing_decisions(store):
    client, data = store
    rows = run(client, "completeness_missing_decisions")
    assert {r["task_run_id"] for r in rows} == set(data.orphan_task_runs) and data.orphan_task_runs
    assert {r["status_code"] for r in rows} == {"Error"}
    assert run(client, "completeness_missing_decisions", span_name_like="no-such-task%") == []


def test_decision_detail(store):
    client, data = store
    grouped = reviews_by_decision(data)
    decision = next(d for d in data.decisions if len(grouped.get(d.decision_id, [])) >= 1)
    (row,) = run(client, "decision_detail", decision_id=decision.decision_id)
    assert row["outcome"] == decision.outcome
    assert row["options"] == decision.options
    assert row["confidence"] == decision.confidence
    assert row["score"] == decision.score and row["threshold"] == decision.threshold
    assert row["inputs"] == decision.inputs and row["inputs_digest"] == decision.inputs_digest
    assert row["integrity_seq"] == decision.integrity_seq
    assert row["review_required"] is decision.review_required
    assert len(row["reviews"]) == len(grouped[decision.decision_id])
    assert row["reviews"][0][2] == grouped[decision.decision_id][0].action


def test_integrity_chain_breaks(store):
    client, data = store
    rows = run(client, "integrity_chain_breaks")
    assert data.broken_chain and len(rows) == 1
    (chain,) = rows
    assert chain["chain"] == SEED_CHAIN and chain["status"] == "BROKEN"
    assert chain["records"] == len(data.decisions) and (chain["first_seq"], chain["last_seq"]) == (1, len(data.decisions))
    assert (chain["broken_links"], chain["missing_records"], chain["forked_positions"]) == (len(data.broken_chain), 0, 0)


def test_model_inventory(store):
    client, data = store
    counts = Counter((d.model_name, d.model_version) for d in data.decisions)
    rows = run(client, "model_inventory")
    assert {(r["model_name"], r["model_version"]): r["decisions"] for r in rows} == dict(counts)
    approved_now = {(r["model_name"], r["model_version"]) for r in rows if r["approved_now"]}
    assert approved_now == {("credit-scorer", "1.0"), ("triage-net", "3.2")}


def test_decision_volume_daily(store):
    client, data = store
    rows = run(client, "decision_volume_daily")
    per_day = Counter((d.timestamp.date(), d.decision_type, d.automation) for d in data.decisions)
    assert {(r["day"], r["decision_type"], r["automation"]): r["decisions"] for r in rows} == dict(per_day)
    assert sum(r["adverse"] for r in rows) == sum(d.outcome in ADVERSE_OUTCOMES for d in data.decisions)
    assert sum(r["reviewed"] for r in rows) == len({r.decision_id for r in data.reviews})


def test_redaction_summary(store):
    client, data = store
    rows = run(client, "redaction_summary")
    # seed: every 7th decision had inputs.ssn redacted
    expected = Counter(data.decisions[i].decision_type for i in range(0, N, 7))
    assert {(r["decision_type"], r["field"]): r["decisions"] for r in rows} == {
        (t, "inputs.ssn"): c for t, c in expected.items()
    }


def test_retention_summary(store):
    client, data = store
    rows = run(client, "retention_summary")
    counts = Counter(d.retention_class for d in data.decisions)
    assert {r["retention_class"]: r["decisions"] for r in rows} == dict(counts)
    oldest = min(d.timestamp_ns for d in data.decisions)
    assert min(r["oldest"] for r in rows) == naive(datetime.fromtimestamp(oldest // 1000 / 1e6, tz=timezone.utc))


def test_duplicate_deliveries(store):
    client, data = store
    rows = run(client, "duplicate_deliveries")
    assert {r["decision_id"] for r in rows} == set(data.redelivered_ids)
    assert {r["deliveries"] for r in rows} == {2}


def test_delivery_completeness(store):
    client, data = store
    rows = run(client, "delivery_completeness")
    stored = Counter(d.flow_run_id for d in data.decisions)
    assert {r["flow_run_id"]: (r["captured"], r["stored"]) for r in rows} == {
        run_id: (captured, stored[run_id]) for run_id, captured in data.flow_captured.items()
    }
    (incomplete,) = run(client, "delivery_completeness", only_incomplete=1)
    assert incomplete["missing"] == 1 and incomplete["flow_run_id"] == list(data.flow_captured)[-1]


def test_period_summary(store):
    client, data = store
    (row,) = run(client, "period_summary")
    decisions = data.decisions
    assert (row["decisions"], row["adverse"], row["review_required"]) == (
        N,
        sum(d.adverse for d in decisions),
        sum(d.review_required for d in decisions),
    )
    assert row["decision_types"] == len({d.decision_type for d in decisions})
    assert row["model_versions"] == len({(d.model_name, d.model_version) for d in decisions})
    assert (row["reviews"], row["overrides"]) == (len(data.reviews), sum(r.action == "override" for r in data.reviews))
    first, last = min(d.timestamp_ns for d in decisions), max(d.timestamp_ns for d in decisions)
    as_stored = lambda ns: naive(datetime.fromtimestamp(ns // 1000 / 1e6, tz=timezone.utc))  # noqa: E731
    assert (row["first_decision"], row["last_decision"]) == (as_stored(first), as_stored(last))
    # decisions count by decision time, reviews by review time
    end = SEED_START + timedelta(days=14)
    (early,) = run(client, "period_summary", end=end.strftime("%Y-%m-%d"))
    assert early["decisions"] == sum(d.timestamp < end for d in decisions)
    assert early["reviews"] == sum(r.timestamp_ns < end.timestamp() * 1e9 for r in data.reviews)


def test_outcomes_by_model_version(store):
    client, data = store
    rows = run(client, "outcomes_by_model_version")
    assert {(r["model_name"], r["model_version"], r["outcome"]): r["decisions"] for r in rows} == dict(
        Counter((d.model_name, d.model_version, d.outcome) for d in data.decisions)
    )


def test_score_distribution(store):
    client, data = store
    for bins in (20, 4):
        expected = Counter((d.decision_type, d.outcome, min(int(d.score * bins), bins - 1)) for d in data.decisions)
        rows = run(client, "score_distribution", bins=bins)
        assert {(r["decision_type"], r["outcome"], r["bin"]): r["decisions"] for r in rows} == dict(expected)
        for r in rows:
            assert (r["bin_from"], r["bin_to"]) == (pytest.approx(r["bin"] / bins), pytest.approx((r["bin"] + 1) / bins))


def test_thresholds_by_decision_type(store):
    client, data = store
    types = Counter(d.decision_type for d in data.decisions)
    rows = run(client, "thresholds_by_decision_type")
    assert {
        r["decision_type"]: (r["decisions"], r["scored_decisions"], r["usual_threshold"], r["distinct_thresholds"])
        for r in rows
    } == {t: (n, n, 0.5, 1) for t, n in types.items()}  # the seed scores every decision against 0.5


def test_human_oversight_by_model(store):
    client, data = store
    grouped = reviews_by_decision(data)
    stats: dict = defaultdict(lambda: [0, 0, 0, 0, 0])
    for d in data.decisions:
        reviews = grouped.get(d.decision_id, [])
        entry = stats[(d.model_name, d.model_version)]
        entry[0] += 1
        entry[1] += d.review_required
        entry[2] += bool(reviews)
        entry[3] += any(r.action == "override" for r in reviews)
        entry[4] += any(r.action == "escalate" for r in reviews)
    rows = run(client, "human_oversight_by_model")
    assert {
        (r["model_name"], r["model_version"]): [r["decisions"], r["review_required"], r["reviewed"], r["overridden"], r["escalated"]]
        for r in rows
    } == dict(stats)


def test_task_run_accounting(store):
    client, data = store
    decided = client.query("SELECT task_run_id, uniqExact(decision_id) FROM decisions FINAL WHERE task_run_id != '' "
                           "GROUP BY task_run_id ORDER BY task_run_id LIMIT 1").result_rows[0]
    client.insert("otel_traces", [["task-run-span", {"prefect.run.type": "task", "prefect.run.id": "instrumented-only"}]],
                  column_names=["SpanName", "SpanAttributes"])
    rows = {r[0]: r for r in run_query(client, "task_run_accounting",
                                       {"task_run_ids": [decided[0], "instrumented-only", "never-seen"]}).rows}
    assert rows[decided[0]][1] == decided[1]
    assert rows["instrumented-only"][1:] == (0, True)
    assert rows["never-seen"][1:] == (0, False)  # unaccounted: no trace of it in the store
    everything = run_query(client, "task_run_accounting").rows  # no ids: every task run with a stored span
    assert ("instrumented-only", 0, True) in everything
