"""Oversight and fair-lending questions on real chDB, checked against answers computed in Python.

The store holds the seed (tests/seed.py: real SDK spans through ClickHouseSpanExporter, some
re-delivered) plus records this module adds through the same path, for cases the seed lacks:
vague or unscored adverse-action reasons, overrides without a reason, rubber-stamping reviewers,
escalations and comments that are not sign-off, and task runs on days nothing was recorded.
Every extra span is exported twice, as a retrying shipper would. Expected rows are derived from
the plain records (and, for task runs, from the spans themselves), independently of SQL.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import Counter, defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link

from otel_decisions import semconv
from otel_decisions.catalogue import load_catalogue, run_query
from otel_decisions.store.client import get_client
from otel_decisions.store.exporter import ClickHouseSpanExporter
from tests.seed import SEED_START, SeededDecision, SeededReview, fresh_chdb_dsn, seed_decisions

N = 300
SEED_SERVICE = "seed-app"
OTHER_SERVICE = "batch-app"
NEW_QUERIES = (
    "reason_quality",
    "override_rates_monthly",
    "reviewer_agreement",
    "missing_signoff",
    "silent_days",
    "adverse_impact_monthly",
)


def ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def at(days: float, hour: int = 0, minute: int = 0) -> datetime:
    return SEED_START + timedelta(days=days, hours=hour, minutes=minute)


def stored(ns_value: int) -> datetime:
    """A nanosecond time as the client returns a DateTime64(9) (naive UTC, microseconds)."""
    return datetime.fromtimestamp(ns_value // 1000 / 1e6, tz=UTC).replace(tzinfo=None)


def day_of(ns_value: int) -> date:
    return datetime.fromtimestamp(ns_value / 1e9, tz=UTC).date()


def month_of(ns_value: int) -> date:
    return day_of(ns_value).replace(day=1)


# --- extra records, written as real SDK spans through the exporter --------------------------------
class Extras:
    """Decisions, reviews and bare task-run spans added to the seed, as real SDK spans."""

    def __init__(self) -> None:
        self.memory = InMemorySpanExporter()
        self.providers: dict[str, TracerProvider] = {}
        self.decisions: list[SeededDecision] = []
        self.reviews: list[SeededReview] = []
        self.named: dict[str, SeededDecision] = {}
        self._ids = 0

    def new_id(self) -> str:
        self._ids += 1
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"oversight-extra:{self._ids}"))

    def tracer(self, service: str = SEED_SERVICE) -> trace.Tracer:
        if service not in self.providers:
            provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: service}))
            provider.add_span_processor(SimpleSpanProcessor(self.memory))
            self.providers[service] = provider
        return self.providers[service].get_tracer(semconv.INSTRUMENTATION_SCOPE, "0.1.0")

    def task_run(self, moment: datetime, *, service: str = SEED_SERVICE, task_name: str = "score-application",
                 typed: bool = True, flow_run_id: str = "") -> tuple[str, Any]:
        """A Prefect task-run span (``typed``: prefect.run.type = task; else a span carrying prefect.task_run.id)."""
        task_run_id = self.new_id()
        if typed:
            attributes = {
                semconv.PREFECT_RUN_TYPE: "task",
                semconv.PREFECT_RUN_ID: task_run_id,
                semconv.PREFECT_RUN_NAME: f"{task_name}-{task_run_id[:4]}",
                semconv.PREFECT_FLOW_RUN_ID: flow_run_id or self.new_id(),
            }
        else:
            attributes = {semconv.PREFECT_TASK_RUN_ID: task_run_id, semconv.PREFECT_TASK_NAME: task_name}
        span = self.tracer(service).start_span(f"{task_name}-{task_run_id[:4]}", start_time=ns(moment),
                                               attributes=attributes)
        return task_run_id, span

    def bare_task_run(self, moment: datetime, **kwargs: Any) -> str:
        task_run_id, span = self.task_run(moment, **kwargs)
        span.end(end_time=ns(moment) + 50_000_000)
        return task_run_id

    def decision(self, name: str, moment: datetime, *, outcome: str, reasons: list[str], inputs: dict | None,
                 segment: str = "26-40", automation: str = "automated", review_required: bool = False,
                 decision_type: str = "credit.approval", model_version: str = "3.2.0") -> SeededDecision:
        flow_run_id = self.new_id()
        task_run_id, parent = self.task_run(moment - timedelta(milliseconds=2), flow_run_id=flow_run_id)
        decision_id = self.new_id()
        inputs_text = "" if inputs is None else json.dumps(inputs, sort_keys=True)
        options = ["approve", "deny", "refer"]
        record = SeededDecision(
            decision_id=decision_id, timestamp_ns=ns(moment), decision_type=decision_type, outcome=outcome,
            options=options, confidence=0.8, score=0.4, threshold=0.5, rationale=f"{outcome}: extra record",
            reasons=reasons, subject_id=f"subj-x{len(self.decisions):03d}", model_name="credit-lr",
            model_version=model_version, segment=segment, automation=automation, review_required=review_required,
            regulations=["ECOA-RegB-1002.9"], retention_class="finra-6y", inputs=inputs_text, inputs_digest="",
            integrity_seq=0, integrity_hash="", integrity_prev_hash="", flow_run_id=flow_run_id,
            task_run_id=task_run_id, flow_name="credit-decisioning", task_name="score-application",
        )
        attributes: dict[str, Any] = {
            semconv.DECISION_ID: decision_id,
            semconv.DECISION_TYPE: decision_type,
            semconv.DECISION_OUTCOME: outcome,
            semconv.DECISION_OPTIONS: options,
            semconv.DECISION_CONFIDENCE: record.confidence,
            semconv.DECISION_SCORE: record.score,
            semconv.DECISION_THRESHOLD: record.threshold,
            semconv.DECISION_RATIONALE: record.rationale,
            semconv.DECISION_REASONS: reasons,
            semconv.DECISION_SUBJECT_ID: record.subject_id,
            semconv.DECISION_MODEL_NAME: record.model_name,
            semconv.DECISION_MODEL_VERSION: model_version,
            semconv.DECISION_POLICY_VERSION: "credit-policy-2026.02",
            semconv.DECISION_AUTOMATION: automation,
            semconv.DECISION_REVIEW_REQUIRED: review_required,
            semconv.DECISION_REGULATIONS: record.regulations,
            semconv.DECISION_RETENTION_CLASS: record.retention_class,
            semconv.DECISION_SOURCE: semconv.DecisionSource.EXPLICIT.value,
            semconv.DECISION_SEGMENT: segment,
            semconv.PREFECT_FLOW_RUN_ID: flow_run_id,
            semconv.PREFECT_TASK_RUN_ID: task_run_id,
            semconv.PREFECT_FLOW_NAME: record.flow_name,
            semconv.PREFECT_TASK_NAME: record.task_name,
        }
        if inputs is not None:
            attributes[semconv.DECISION_INPUTS] = inputs_text
        span = self.tracer().start_span(semconv.DECISION_SPAN_PREFIX + decision_type,
                                        context=trace.set_span_in_context(parent), start_time=record.timestamp_ns,
                                        attributes=attributes)
        ctx = span.get_span_context()
        record.trace_id, record.span_id = ctx.trace_id, ctx.span_id
        span.end(end_time=record.timestamp_ns + 1_000_000)
        parent.end(end_time=record.timestamp_ns + 3_000_000)
        self.decisions.append(record)
        self.named[name] = record
        return record

    def review(self, decision: SeededDecision | str, reviewer: str, action: str, *, after_s: float,
               reason: str | None = None, new_outcome: str = "", decided_at_ns: int | None = None,
               original_outcome: str | None = None, extra_attributes: dict | None = None) -> SeededReview:
        """A ``decision.review`` span *after_s* seconds after the decision (or after *decided_at_ns*)."""
        if isinstance(decision, SeededDecision):
            decision_id, decided, original = decision.decision_id, decision.timestamp_ns, decision.outcome
            links = [Link(trace.SpanContext(decision.trace_id, decision.span_id, is_remote=False))]
        else:
            decision_id, decided, original, links = decision, decided_at_ns, "", []
        if original_outcome is not None:
            original = original_outcome
        review = SeededReview(
            review_id=self.new_id(), decision_id=decision_id, timestamp_ns=int(decided + after_s * 1e9),
            reviewer_id=reviewer, action=action, reason=reason or "", original_outcome=original,
            new_outcome=new_outcome or (original if action != "override" else ""), decided_at_ns=decided,
        )
        attributes: dict[str, Any] = {
            semconv.DECISION_ID: decision_id,
            semconv.DECISION_REVIEW_ID: review.review_id,
            semconv.DECISION_REVIEW_REVIEWER_ID: reviewer,
            semconv.DECISION_REVIEW_ACTION: action,
            semconv.DECISION_REVIEW_DECIDED_AT: decided,
        }
        if reason is not None:  # None: the attribute is absent, as record_review leaves it
            attributes[semconv.DECISION_REVIEW_REASON] = reason
        if original:
            attributes[semconv.DECISION_REVIEW_ORIGINAL_OUTCOME] = original
        if review.new_outcome:
            attributes[semconv.DECISION_REVIEW_NEW_OUTCOME] = review.new_outcome
        attributes.update(extra_attributes or {})
        span = self.tracer().start_span(semconv.REVIEW_SPAN_NAME, start_time=review.timestamp_ns, links=links,
                                        attributes=attributes)
        span.end(end_time=review.timestamp_ns + 500_000)
        self.reviews.append(review)
        return review

    def spans(self) -> list[ReadableSpan]:
        for provider in self.providers.values():
            provider.shutdown()
        return list(self.memory.get_finished_spans())


def demo_applicant() -> dict[str, Any]:
    """Inputs shaped as examples/credit_decisioning.py records them (its applicant fields)."""
    from examples.credit_decisioning import generate_applicants

    return generate_applicants(1, 5)[0]


def build_extras(data) -> Extras:
    from examples.credit_decisioning import ADVERSE_REASONS, FAVOURABLE_REASONS, FEATURES

    x = Extras()
    seed = sorted(data.decisions, key=lambda d: d.timestamp_ns)

    # reason_quality ---------------------------------------------------------------------------
    applicant = demo_applicant()
    assert set(FEATURES) <= set(applicant) and set(ADVERSE_REASONS) == set(FEATURES)
    x.decision("demo_deny", at(3, 10), outcome="deny", reasons=list(ADVERSE_REASONS.values()), inputs=applicant,
               segment=applicant["age_band"])
    x.decision("demo_approve", at(3, 11), outcome="approve", reasons=list(FAVOURABLE_REASONS.values()),
               inputs=applicant, segment=applicant["age_band"])
    x.decision("vague", at(10, 14), outcome="deny", inputs={"income": 41_000, "debt_to_income": 0.52}, reasons=[
        "Does not meet our INTERNAL standards",          # vague
        "Insufficient score",                            # vague
        "Other",                                         # vague
        "Excessive obligations in relation to income",   # names income / debt_to_income
        "Credit score below cut-off",                    # vague
        "Company policy",                                # vague
        "Delinquent past or present credit obligations with others",  # 'others' is not 'other'; but not scored
    ])
    x.decision("unscored", at(20, 9), outcome="deny", inputs={"income": 52_000, "loan_amount": 45_000}, reasons=[
        "Loan amount too high",                  # loan_amount, underscore as space
        "loan_amount exceeds the limit",         # loan_amount as written
        "Length of employment insufficient",     # employment_years is not among this decision's inputs
        "Too many recent inquiries",             # no feature at all
        "Amount of credit requested too high",   # mapped to loan_amount by feature_phrases
    ])
    x.decision("approve_vague", at(21, 9), outcome="approve", reasons=["Other"], inputs={"income": 90_000})
    x.decision("no_inputs", at(22, 9), outcome="decline", reasons=["Not qualified", "Insufficient collateral"],
               inputs=None, segment="18-25")
    # December, before the seed: two denials (no favourable outcome that month)
    for hour, segment in ((10, "26-40"), (11, "41-65")):
        x.decision(f"december_{segment}", datetime(2025, 12, 15, hour, tzinfo=UTC), outcome="deny",
                   reasons=["Income insufficient for amount of credit requested"], inputs={"income": 18_000},
                   segment=segment)

    # sign-off -----------------------------------------------------------------------------------
    escalated = x.decision("escalated", at(30, 9), outcome="refer", reasons=["income could not be verified"],
                           inputs={"income": 70_000}, review_required=True)
    commented = x.decision("commented", at(30, 10), outcome="approve", reasons=[], inputs={"income": 80_000},
                           automation="human_in_loop")
    rejected = x.decision("rejected", at(30, 11), outcome="approve", reasons=[], inputs={"income": 85_000},
                          review_required=True)
    x.decision("untouched", at(30, 12), outcome="refer", reasons=[], inputs={"income": 60_000},
               review_required=True, automation="human_in_loop")
    x.review(escalated, "reviewer-supervisor", "escalate", after_s=3600, reason="needs a senior underwriter")
    x.review(commented, "reviewer-supervisor", "comment", after_s=1800, reason="looked at it")
    x.review(rejected, "reviewer-supervisor", "reject", after_s=900, reason="documents missing")

    # reviewers ----------------------------------------------------------------------------------
    january = [d for d in seed if d.timestamp.month == 1]
    february = [d for d in seed if d.timestamp.month == 2]
    for d in january[:6]:  # fast, always approving
        x.review(d, "reviewer-rubber", "approve", after_s=1.5, reason="ok")
    for d in january[6:8]:
        x.review(d, "reviewer-rubber", "comment", after_s=1.0, reason="")
    strict = february[:7]
    other = lambda d: next(o for o in d.options if o != d.outcome)  # noqa: E731
    x.review(strict[0], "reviewer-strict", "override", after_s=3600, new_outcome=other(strict[0]))  # no reason at all
    x.review(strict[1], "reviewer-strict", "override", after_s=3600, new_outcome=other(strict[1]), reason="   ")
    x.review(strict[2], "reviewer-strict", "override", after_s=3600, new_outcome=strict[2].outcome,
             reason="confirmed after a recheck")  # an override to the model's own outcome: an agreement
    x.review(strict[3], "reviewer-strict", "reject", after_s=3600, reason="documentation missing")
    x.review(strict[4], "reviewer-strict", "escalate", after_s=3600, reason="needs a senior underwriter")
    x.review(strict[5], "reviewer-strict", "approve", after_s=3600, reason="file reviewed")
    x.review(strict[6], "reviewer-strict", "comment", after_s=5, reason="")
    x.review(february[10], "reviewer-few", "approve", after_s=7200, reason="file reviewed")
    # a review of a decision that is not in the store: its own decision time makes it fast
    x.review(str(uuid.uuid5(uuid.NAMESPACE_URL, "oversight-extra:never-stored")), "reviewer-few", "approve",
             after_s=3, decided_at_ns=ns(at(40, 9)), original_outcome="approve", reason="file reviewed")

    # silent days --------------------------------------------------------------------------------
    for minute in (0, 5, 10):  # three task runs after the seed ended, one with a child span of its own
        task_run_id, span = x.task_run(datetime(2026, 3, 20, 8, minute, tzinfo=UTC))
        if minute == 5:
            child = x.tracer().start_span("call-bureau", context=trace.set_span_in_context(span),
                                          start_time=ns(datetime(2026, 3, 20, 8, 6, tzinfo=UTC)),
                                          attributes={semconv.PREFECT_TASK_RUN_ID: task_run_id})
            child.end()
        span.end(end_time=ns(datetime(2026, 3, 20, 8, minute + 1, tzinfo=UTC)))
    x.bare_task_run(datetime(2025, 12, 31, 23, 0, tzinfo=UTC), typed=False)  # only prefect.task_run.id
    for hour in (8, 9):  # another service, on a day the seed service did record decisions
        x.bare_task_run(at(12, hour), service=OTHER_SERVICE, task_name="nightly-rescore")
    flow = x.tracer().start_span("credit-decisioning-ffff", start_time=ns(datetime(2026, 3, 25, 8, tzinfo=UTC)),
                                 attributes={semconv.PREFECT_RUN_TYPE: "flow", semconv.PREFECT_RUN_ID: x.new_id()})
    flow.end()  # a flow run alone is not a task run
    x.review(seed[0], "reviewer-supervisor", "comment", after_s=(datetime(2026, 3, 26, 8, tzinfo=UTC)
             - seed[0].timestamp).total_seconds(), reason="audit note",
             extra_attributes={semconv.PREFECT_TASK_RUN_ID: x.new_id()})  # a review is a record, not a task run
    checkpoint = x.tracer().start_span(semconv.CHECKPOINT_SPAN_NAME,
                                       start_time=ns(datetime(2026, 3, 27, 8, tzinfo=UTC)),
                                       attributes={semconv.PREFECT_TASK_RUN_ID: x.new_id()})
    checkpoint.end()
    return x


@pytest.fixture(scope="module")
def store():
    client = get_client(fresh_chdb_dsn("oversight"), role="admin")
    data = seed_decisions(client, n=N, seed=23, redeliver=20)
    extras = build_extras(data)
    spans = extras.spans()
    exporter = ClickHouseSpanExporter(client=client)
    for _delivery in range(2):  # every extra span is delivered twice
        assert exporter.export(spans) is SpanExportResult.SUCCESS
    world = {
        "data": data,
        "extras": extras,
        "decisions": data.decisions + extras.decisions,
        "reviews": data.reviews + extras.reviews,
        "spans": data.spans + spans,
    }
    yield client, world
    client.close()


def run(client, name, **params):
    return run_query(client, name, params).as_dicts()


def test_new_queries_are_in_the_catalogue_with_a_test_each():
    catalogue = load_catalogue()
    tested = {name.removeprefix("test_").split("__")[0] for name in globals() if name.startswith("test_")}
    for name in NEW_QUERIES:
        query = catalogue[name]
        assert query.title and query.description and query.regulations
        assert name in tested


def test_extras_are_stored_once_despite_double_delivery(store):
    client, world = store
    assert client.command("SELECT count() FROM decisions FINAL") == len(world["decisions"])
    assert client.command("SELECT count() FROM decision_reviews FINAL") == len(world["reviews"])
    assert client.command("SELECT count() FROM otel_traces WHERE SpanName = 'decision.review'") == (
        len(world["data"].reviews) + 2 * len(world["extras"].reviews))


# --- reason_quality -------------------------------------------------------------------------------
VAGUE = ("internal standards", "policy", "insufficient score", "qualifying score", "credit score", "not qualified",
         "other", "unspecified")
FEATURE_PHRASES = {
    "credit_history_years": "credit history",
    "delinquencies": "delinquent",
    "utilisation": "revolving",
    "loan_amount": "amount of credit",
    "employment_years": "employment",
}


def words(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def says(text: str, phrase: str) -> bool:
    return f" {words(phrase)} " in f" {words(text)} "


def expected_reason_problems(decisions, adverse=("deny", "decline"), vague=VAGUE, phrases=FEATURE_PHRASES):
    expected = {}
    for d in decisions:
        if d.outcome not in adverse:
            continue
        keys = list(json.loads(d.inputs)) if d.inputs else []
        naming = keys + [phrase for key, phrase in phrases.items() if key in keys]
        for reason in dict.fromkeys(d.reasons):
            if any(says(reason, p) for p in vague):
                expected[(d.decision_id, reason)] = "vague"
            elif keys and not any(says(reason, p) for p in naming):
                expected[(d.decision_id, reason)] = "not a scored feature"
    return expected


def test_reason_quality(store):
    client, world = store
    rows = run(client, "reason_quality")
    got = {(r["decision_id"], r["reason"]): r["problem"] for r in rows}
    assert got == expected_reason_problems(world["decisions"])
    assert len(rows) == len(got)  # one row per (decision, reason), re-delivery notwithstanding
    named = world["extras"].named
    assert {reason: problem for (d, reason), problem in got.items() if d == named["vague"].decision_id} == {
        "Does not meet our INTERNAL standards": "vague",
        "Insufficient score": "vague",
        "Other": "vague",
        "Credit score below cut-off": "vague",
        "Company policy": "vague",
        "Delinquent past or present credit obligations with others": "not a scored feature",
    }
    assert {reason: problem for (d, reason), problem in got.items() if d == named["unscored"].decision_id} == {
        "Length of employment insufficient": "not a scored feature",
        "Too many recent inquiries": "not a scored feature",
    }
    assert {reason for (d, reason) in got if d == named["no_inputs"].decision_id} == {"Not qualified"}
    # the demo's own reason wording, on the demo's inputs, passes
    for name in ("demo_deny", "demo_approve", "approve_vague") + tuple(n for n in named if n.startswith("december")):
        assert not any(d == named[name].decision_id for d, _ in got), name
    # the seed's inputs are only income and segment: its other credit reasons name no scored feature
    seed_ids = {d.decision_id for d in world["data"].decisions}
    seeded = {reason for (d, reason), problem in got.items() if d in seed_ids}
    assert seeded == {"insufficient credit history", "recent delinquency", "too many recent inquiries",
                      "collateral value insufficient"}
    for row in rows:
        decision = next(d for d in world["decisions"] if d.decision_id == row["decision_id"])
        assert row["reason_rank"] == decision.reasons.index(row["reason"]) + 1
        assert row["outcome"] == decision.outcome
        assert row["is_vague"] == (row["problem"] == "vague")
        if row["problem"] == "not a scored feature":
            assert row["names_scored_feature"] is False
            assert row["scored_features"] == list(json.loads(decision.inputs))


def test_reason_quality__params(store):
    client, world = store
    decisions = world["decisions"]
    # refer counts as adverse only when asked
    with_refer = run(client, "reason_quality", adverse_outcomes=["deny", "decline", "refer"])
    assert {(r["decision_id"], r["reason"]): r["problem"] for r in with_refer} == expected_reason_problems(
        decisions, adverse=("deny", "decline", "refer"))
    assert any(r["outcome"] == "refer" for r in with_refer)
    # own vague list and no phrase map: only the raw input keys name a feature
    rows = run(client, "reason_quality", vague_phrases=["recent"], feature_phrases=[])
    assert {(r["decision_id"], r["reason"]): r["problem"] for r in rows} == expected_reason_problems(
        decisions, vague=("recent",), phrases={})
    assert (world["extras"].named["unscored"].decision_id, "Amount of credit requested too high") in {
        (r["decision_id"], r["reason"]) for r in rows}
    # period
    end = SEED_START + timedelta(days=15)
    rows = run(client, "reason_quality", end=end.strftime("%Y-%m-%d"))
    assert {(r["decision_id"], r["reason"]) for r in rows} == set(
        expected_reason_problems([d for d in decisions if d.timestamp < end]))


# --- override_rates_monthly -----------------------------------------------------------------------
def expected_monthly_overrides(world, start_ns=0, end_ns=2**63):
    models = {d.decision_id: (d.model_name, d.model_version) for d in world["decisions"]}
    groups: dict = defaultdict(lambda: [0, 0, []])
    for r in world["reviews"]:
        if r.action == "comment" or not start_ns <= r.timestamp_ns < end_ns:
            continue
        entry = groups[(*models.get(r.decision_id, ("", "")), r.reviewer_id, month_of(r.timestamp_ns))]
        entry[0] += 1
        if r.action == "override":
            entry[1] += 1
            if not r.reason.strip():
                entry[2].append(r.review_id)
    return {k: (v[0], v[1], sorted(v[2])) for k, v in groups.items()}


def test_override_rates_monthly(store):
    client, world = store
    rows = run(client, "override_rates_monthly")
    key = lambda r: (r["model_name"], r["model_version"], r["reviewer_id"], r["month"])  # noqa: E731
    got = {key(r): (r["reviews"], r["overrides"], r["overrides_without_reason_ids"]) for r in rows}
    assert got == expected_monthly_overrides(world)
    assert len(rows) == len(got)
    for row in rows:
        assert row["override_rate"] == pytest.approx(row["overrides"] / row["reviews"], abs=1e-4)
        assert row["overrides_without_reason"] == len(row["overrides_without_reason_ids"])
    # the two reasonless overrides are reviewer-strict's, in February
    without = {rid for r in rows for rid in r["overrides_without_reason_ids"]}
    strict = [r for r in world["extras"].reviews if r.reviewer_id == "reviewer-strict"]
    assert without == {strict[0].review_id, strict[1].review_id}
    assert {r["month"] for r in rows if r["overrides_without_reason"]} == {date(2026, 2, 1)}
    # the seed's overrides all carry a reason, and comments are not reviews
    assert all(r["overrides_without_reason"] == 0 for r in rows if r["reviewer_id"] != "reviewer-strict")
    assert "reviewer-rubber" in {r["reviewer_id"] for r in rows}
    assert sum(r["reviews"] for r in rows if r["reviewer_id"] == "reviewer-rubber") == 6
    # a review of a decision not in the store: no model
    assert ("", "", "reviewer-few", date(2026, 2, 1)) in got
    # period (review time)
    start, end = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    rows = run(client, "override_rates_monthly", start=start.isoformat(), end=end.isoformat())
    assert {key(r): (r["reviews"], r["overrides"], r["overrides_without_reason_ids"]) for r in rows} == (
        expected_monthly_overrides(world, ns(start), ns(end)))
    assert {r["month"] for r in rows} == {date(2026, 2, 1)}


# --- reviewer_agreement ---------------------------------------------------------------------------
def expected_agreement(world, max_seconds=10.0, min_reviews=5):
    decided = {d.decision_id: (d.timestamp_ns, d.outcome) for d in world["decisions"]}
    stats: dict = defaultdict(Counter)
    for r in world["reviews"]:
        if r.action == "comment":
            continue
        decided_ns, model_outcome = decided.get(r.decision_id, (r.decided_at_ns, ""))
        model_outcome = r.original_outcome or model_outcome
        s = stats[r.reviewer_id]
        s["reviews"] += 1
        s["fast_reviews"] += (r.timestamp_ns - decided_ns) / 1e9 < max_seconds
        s["agreements"] += r.action == "approve" or (r.action == "override" and r.new_outcome == model_outcome)
        s["overrides"] += r.action == "override"
        s["rejects"] += r.action == "reject"
    return {
        reviewer: {
            "reviews": s["reviews"],
            "fast_reviews": s["fast_reviews"],
            "agreements": s["agreements"],
            "overrides": s["overrides"],
            "rejects": s["rejects"],
            "always_agrees": s["reviews"] >= min_reviews and s["overrides"] == 0 and s["rejects"] == 0,
        }
        for reviewer, s in stats.items()
    }


def test_reviewer_agreement(store):
    client, world = store
    fields = ("reviews", "fast_reviews", "agreements", "overrides", "rejects", "always_agrees")
    rows = run(client, "reviewer_agreement")
    got = {r["reviewer_id"]: {f: r[f] for f in fields} for r in rows}
    assert got == expected_agreement(world)
    for row in rows:
        assert row["agreement_rate"] == pytest.approx(row["agreements"] / row["reviews"], abs=1e-4)
    assert got["reviewer-rubber"] == {"reviews": 6, "fast_reviews": 6, "agreements": 6, "overrides": 0,
                                      "rejects": 0, "always_agrees": True}
    assert got["reviewer-strict"] == {"reviews": 6, "fast_reviews": 0, "agreements": 2, "overrides": 3,
                                      "rejects": 1, "always_agrees": False}
    assert got["reviewer-few"] == {"reviews": 2, "fast_reviews": 1, "agreements": 2, "overrides": 0,
                                   "rejects": 0, "always_agrees": False}
    assert got["reviewer-supervisor"]["reviews"] == 2  # an escalation and a rejection; comments left out
    assert {r for r, s in got.items() if s["always_agrees"]} == {"reviewer-rubber"}


def test_reviewer_agreement__params(store):
    client, world = store
    fields = ("reviews", "fast_reviews", "agreements", "overrides", "rejects", "always_agrees")
    rows = run(client, "reviewer_agreement", max_seconds=2, min_reviews=2)
    got = {r["reviewer_id"]: {f: r[f] for f in fields} for r in rows}
    assert got == expected_agreement(world, max_seconds=2, min_reviews=2)
    assert {r for r, s in got.items() if s["always_agrees"]} == {"reviewer-rubber", "reviewer-few"}
    assert got["reviewer-few"]["fast_reviews"] == 0  # its 3-second review is not under 2 seconds
    start = datetime(2026, 2, 1, tzinfo=UTC)
    rows = run(client, "reviewer_agreement", start=start.isoformat())
    assert "reviewer-rubber" not in {r["reviewer_id"] for r in rows}  # its reviews were all in January


# --- missing_signoff ------------------------------------------------------------------------------
SIGNOFF = ("approve", "override", "reject")


def expected_missing_signoff(world, start_ns=0, end_ns=2**63):
    by_decision = defaultdict(list)
    for r in world["reviews"]:
        by_decision[r.decision_id].append(r.action)
    expected = {}
    for d in world["decisions"]:
        actions = by_decision.get(d.decision_id, [])
        if not start_ns <= d.timestamp_ns < end_ns:
            continue
        if (d.review_required or d.automation == "human_in_loop") and not any(a in SIGNOFF for a in actions):
            others = [a for a in actions if a not in SIGNOFF]
            expected[d.decision_id] = (len(others), sorted(set(others)))
    return expected


def test_missing_signoff(store):
    client, world = store
    before = time.time_ns()
    rows = run(client, "missing_signoff")
    after = time.time_ns()
    expected = expected_missing_signoff(world)
    assert {r["decision_id"]: (r["other_reviews"], r["other_actions"]) for r in rows} == expected
    assert len(rows) == len(expected)
    named = world["extras"].named
    ids = {r["decision_id"] for r in rows}
    assert {named["escalated"].decision_id, named["commented"].decision_id, named["untouched"].decision_id} <= ids
    assert named["rejected"].decision_id not in ids
    assert next(r for r in rows if r["decision_id"] == named["escalated"].decision_id)["other_actions"] == ["escalate"]
    assert next(r for r in rows if r["decision_id"] == named["commented"].decision_id)["other_actions"] == ["comment"]
    # the seed's reviews are sign-offs: none of its reviewed decisions is listed
    assert not ids & {r.decision_id for r in world["data"].reviews}
    decisions = {d.decision_id: d for d in world["decisions"]}
    for row in rows:
        d = decisions[row["decision_id"]]
        assert row["timestamp"] == stored(d.timestamp_ns)
        assert bool(row["review_required"]) == d.review_required and row["automation"] == d.automation
        low, high = (before - d.timestamp_ns) / 3.6e12, (after - d.timestamp_ns) / 3.6e12
        assert low - 0.01 <= row["age_hours"] <= high + 0.01


def test_missing_signoff__params(store):
    client, world = store
    start, end = SEED_START + timedelta(days=14), SEED_START + timedelta(days=35)
    rows = run(client, "missing_signoff", start=start.isoformat(), end=end.isoformat())
    assert {r["decision_id"] for r in rows} == set(expected_missing_signoff(world, ns(start), ns(end)))
    # an escalation counts as sign-off only if the caller says so
    rows = run(client, "missing_signoff", signoff_actions=["approve", "override", "reject", "escalate"])
    assert world["extras"].named["escalated"].decision_id not in {r["decision_id"] for r in rows}
    assert world["extras"].named["commented"].decision_id in {r["decision_id"] for r in rows}
    # grace period: only the older ones (a threshold half-way across the widest gap between two ages)
    everything = sorted(run(client, "missing_signoff"), key=lambda r: r["age_hours"])
    middle = max(range(1, len(everything)), key=lambda i: everything[i]["age_hours"] - everything[i - 1]["age_hours"])
    threshold = (everything[middle - 1]["age_hours"] + everything[middle]["age_hours"]) / 2
    assert everything[middle]["age_hours"] - everything[middle - 1]["age_hours"] > 0.1
    rows = run(client, "missing_signoff", min_age_hours=threshold)
    assert {r["decision_id"] for r in rows} == {r["decision_id"] for r in everything[middle:]}


# --- silent_days ----------------------------------------------------------------------------------
def expected_silent_days(world, start: date = date(1970, 1, 1), end: date = date(2100, 1, 1)):
    first: dict = {}
    for span in world["spans"]:
        attrs = span.attributes or {}
        if semconv.is_decision_record(span.name):
            continue
        if attrs.get(semconv.PREFECT_RUN_TYPE) == "task":
            task_run_id = attrs.get(semconv.PREFECT_RUN_ID, "")
        else:
            task_run_id = attrs.get(semconv.PREFECT_TASK_RUN_ID, "")
        if not task_run_id or not start <= day_of(span.start_time) < end:
            continue
        key = (task_run_id, span.resource.attributes[semconv.SERVICE_NAME])
        first[key] = min(first.get(key, span.start_time), span.start_time)
    task_runs = Counter((day_of(started), service) for (_id, service), started in first.items())
    decided = {(day_of(d.timestamp_ns), SEED_SERVICE) for d in world["decisions"]}  # every decision is seed-app's
    return {key: runs for key, runs in task_runs.items() if key not in decided}


def test_silent_days(store):
    client, world = store
    rows = run(client, "silent_days")
    got = {(r["day"], r["service_name"]): r["task_runs"] for r in rows}
    assert got == expected_silent_days(world)
    assert got == {
        (date(2025, 12, 31), SEED_SERVICE): 1,
        ((SEED_START + timedelta(days=12)).date(), OTHER_SERVICE): 2,
        (date(2026, 3, 20), SEED_SERVICE): 3,
    }
    assert {r["decisions"] for r in rows} == {0}
    # days with decisions are not silent: every seed day, and the December day of the extra denials
    decision_days = {day_of(d.timestamp_ns) for d in world["decisions"]}
    assert date(2025, 12, 15) in decision_days
    assert not {r["day"] for r in rows if r["service_name"] == SEED_SERVICE} & decision_days
    assert [(r["day"], r["service_name"]) for r in rows] == sorted(got)


def test_silent_days__period(store):
    client, world = store
    rows = run(client, "silent_days", start="2026-01-01", end="2026-03-21")
    assert {(r["day"], r["service_name"]): r["task_runs"] for r in rows} == expected_silent_days(
        world, date(2026, 1, 1), date(2026, 3, 21))
    assert {r["day"] for r in rows} == {(SEED_START + timedelta(days=12)).date(), date(2026, 3, 20)}
    assert run(client, "silent_days", start="2026-03-21", end="2026-04-01") == []  # flow, review, checkpoint only


# --- adverse_impact_monthly -----------------------------------------------------------------------
def expected_impact(decisions, decision_type="credit.approval", favourable=("approve",)):
    totals, good = Counter(), Counter()
    for d in decisions:
        if d.segment and (not decision_type or d.decision_type == decision_type):
            key = (month_of(d.timestamp_ns), d.segment)
            totals[key] += 1
            good[key] += d.outcome in favourable
    best = defaultdict(float)
    for (month, segment), n in totals.items():
        best[month] = max(best[month], good[(month, segment)] / n)
    result = {}
    for (month, segment), n in totals.items():
        rate = good[(month, segment)] / n
        ratio = rate / best[month] if best[month] else None
        result[(month, segment)] = (n, good[(month, segment)], rate, ratio)
    return result


def test_adverse_impact_monthly(store):
    client, world = store
    rows = run(client, "adverse_impact_monthly")
    expected = expected_impact(world["decisions"])
    assert {(r["month"], r["segment"]): (r["decisions"], r["favourable"]) for r in rows} == {
        k: v[:2] for k, v in expected.items()}
    assert {r["month"] for r in rows} == {month for month, _segment in expected}
    assert {date(2025, 12, 1), date(2026, 1, 1), date(2026, 2, 1)} <= {r["month"] for r in rows}
    for row in rows:
        _n, _good, rate, ratio = expected[(row["month"], row["segment"])]
        assert row["favourable_rate"] == pytest.approx(rate, abs=1e-4)
        if ratio is None:
            assert row["adverse_impact_ratio"] is None and row["below_four_fifths"] is False
        else:
            assert row["adverse_impact_ratio"] == pytest.approx(ratio, abs=1e-4)
            assert row["below_four_fifths"] == (ratio < 0.8)
    # December: only denials, so no best segment to compare with
    assert {r["segment"]: r["adverse_impact_ratio"] for r in rows if r["month"] == date(2025, 12, 1)} == {
        "26-40": None, "41-65": None}
    # each month's best segment has ratio 1, and the seed's bias against 18-25 shows up in some month
    for month in {date(2026, 1, 1), date(2026, 2, 1)}:
        assert max(r["adverse_impact_ratio"] for r in rows if r["month"] == month) == 1.0
    assert any(r["below_four_fifths"] and r["segment"] == "18-25" for r in rows)
    assert [(r["month"], r["segment"]) for r in rows] == sorted(expected)


def test_adverse_impact_monthly__params(store):
    client, world = store
    rows = run(client, "adverse_impact_monthly", four_fifths=0.95, favourable_outcomes=["approve", "refer"],
               start="2026-01-01", end="2026-02-01")
    expected = expected_impact([d for d in world["decisions"] if d.timestamp.month == 1 and d.timestamp.year == 2026],
                               favourable=("approve", "refer"))
    assert {(r["month"], r["segment"]): (r["decisions"], r["favourable"]) for r in rows} == {
        k: v[:2] for k, v in expected.items()}
    for row in rows:
        ratio = expected[(row["month"], row["segment"])][3]
        assert row["below_four_fifths"] == (ratio < 0.95)
    # every type: triage decisions are counted too
    rows = run(client, "adverse_impact_monthly", decision_type="")
    assert sum(r["decisions"] for r in rows) == sum(1 for d in world["decisions"] if d.segment)
