"""A realistic, deterministic synthetic decision data set, written through the real exporter.

Builds real OpenTelemetry SDK spans (Prefect-style task-run spans, ``decision <type>`` spans as
their children, ``decision.review`` spans linked to the decision) and exports them with
:class:`ClickHouseSpanExporter`. The returned :class:`SeedData` holds the plain records, so a
test can compute the expected answer of a query independently of SQL.

Example::

    from tests.seed import seed_decisions
    data = seed_decisions(client, n=300, seed=7)        # or an exporter
    assert len(data.decisions) == 300
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from otel_decisions import semconv
from otel_decisions.integrity import chain_material, record_digest
from otel_decisions.retention import RetentionPolicy

_RETENTION = RetentionPolicy.from_settings({})

SEED_CHAIN = "5eed0000-0000-4000-8000-000000000001"
"""Integrity chain id of every seeded decision."""

__all__ = ["SeededDecision", "SeededReview", "SeedData", "build_seed", "seed_decisions", "SEED_START"]

SEED_START = datetime(2026, 1, 5, tzinfo=timezone.utc)  # a Monday
"""First decision time of the data set; decisions span about eight weeks from here."""

ADVERSE_OUTCOMES = ("deny", "decline")
SEGMENTS = ("18-25", "26-40", "41-65", "65+")
_APPROVE_BIAS = {"18-25": 0.45, "26-40": 0.7, "41-65": 0.75, "65+": 0.6}
_CREDIT_REASONS = (
    "debt-to-income ratio too high",
    "insufficient credit history",
    "recent delinquency",
    "income could not be verified",
    "too many recent inquiries",
    "collateral value insufficient",
)
_TRIAGE_REASONS = ("abnormal vitals", "chest pain", "age over 65", "symptom duration > 48h")
_MODELS = {
    "credit.approval": ("credit-scorer", ("1.0", "1.1", "2.0")),
    "clinical.triage": ("triage-net", ("3.2", "3.3")),
}
REVIEWERS = tuple(f"reviewer-{i}" for i in range(1, 5))


@dataclass
class SeededDecision:
    decision_id: str
    timestamp_ns: int
    decision_type: str
    outcome: str
    options: list[str]
    confidence: float | None
    score: float | None
    threshold: float | None
    rationale: str
    reasons: list[str]
    subject_id: str
    model_name: str
    model_version: str
    segment: str
    automation: str
    review_required: bool
    regulations: list[str]
    retention_class: str
    inputs: str
    inputs_digest: str
    integrity_seq: int
    integrity_hash: str
    integrity_prev_hash: str
    flow_run_id: str
    task_run_id: str
    flow_name: str
    task_name: str
    trace_id: int = 0
    span_id: int = 0

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.timestamp_ns / 1e9, tz=timezone.utc)

    @property
    def adverse(self) -> bool:
        return self.outcome in ADVERSE_OUTCOMES


@dataclass
class SeededReview:
    review_id: str
    decision_id: str
    timestamp_ns: int
    reviewer_id: str
    action: str
    reason: str
    original_outcome: str
    new_outcome: str
    decided_at_ns: int


@dataclass
class SeedData:
    decisions: list[SeededDecision] = field(default_factory=list)
    reviews: list[SeededReview] = field(default_factory=list)
    orphan_task_runs: list[str] = field(default_factory=list)
    """Task runs that recorded no decision (the completeness query must find exactly these)."""
    task_runs: dict[str, str] = field(default_factory=dict)
    """task_run_id -> task name, for every task-run span seeded."""
    spans: list[ReadableSpan] = field(default_factory=list)
    redelivered: int = 0
    redelivered_ids: list[str] = field(default_factory=list)
    flow_captured: dict[str, int] = field(default_factory=dict)
    """flow_run_id -> decision.flow.captured on its flow-run span (the last run claims one more than stored)."""
    broken_chain: list[str] = field(default_factory=list)
    """Decision ids whose integrity.prev_hash does not match the previous record."""

    def by_id(self) -> dict[str, SeededDecision]:
        return {d.decision_id: d for d in self.decisions}


def _ns(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def build_seed(
    n: int = 300, seed: int = 7, *, start: datetime = SEED_START, days: float = 56, service_name: str = "seed-app"
) -> SeedData:
    """Build the spans and records (nothing is written); decisions spread over *days* from *start*."""
    rng = random.Random(seed)
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: service_name}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, "0.1.0")
    data = SeedData()
    start_ns = _ns(start)
    span_step_ns = int(days * 86_400 * 1e9 / max(n, 1))
    prev_hash = ""
    flow_run_id = ""
    flow_name = ""

    def new_id() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128), version=4))

    def task_span(task_run_id: str, task_name: str, flow_run: str, at: int) -> Any:
        data.task_runs[task_run_id] = task_name
        return tracer.start_span(
            f"{task_name}-{task_run_id[:4]}",
            kind=trace.SpanKind.INTERNAL,
            start_time=at,
            attributes={
                semconv.PREFECT_RUN_TYPE: "task",
                semconv.PREFECT_RUN_ID: task_run_id,
                semconv.PREFECT_RUN_NAME: f"{task_name}-{task_run_id[:4]}",
                semconv.PREFECT_FLOW_RUN_ID: flow_run,
            },
        )

    for i in range(n):
        if i % 10 == 0:
            flow_run_id = new_id()
            flow_name = rng.choice(("credit-decisioning", "clinical-triage"))
        decision_type = "credit.approval" if flow_name == "credit-decisioning" else "clinical.triage"
        at = start_ns + i * span_step_ns + rng.randrange(0, 1_000_000_000)
        segment = rng.choice(SEGMENTS)
        model_name, versions = _MODELS[decision_type]
        # version 2.0 / 3.3 only from week 4: earlier use is "unapproved" in tests.
        model_version = rng.choice(versions)
        score = round(rng.random(), 4)
        threshold = 0.5
        if decision_type == "credit.approval":
            approve = rng.random() < _APPROVE_BIAS[segment]
            outcome = "approve" if approve else rng.choice(("deny", "deny", "refer"))
            options = ["approve", "deny", "refer"]
            pool = _CREDIT_REASONS
            regulations = ["ECOA-RegB-1002.9", "FCRA-615"]
            retention = "finra-6y"
        else:
            outcome = rng.choice(("urgent", "routine", "refer"))
            options = ["urgent", "routine", "refer"]
            pool = _TRIAGE_REASONS
            regulations = ["HIPAA-164.312(b)", "EU-AI-Act-14"]
            retention = "hipaa-6y"
        confidence = None if rng.random() < 0.03 else round(rng.uniform(0.35, 0.99), 4)
        reasons = rng.sample(pool, k=rng.randint(2, 4))
        rationale = f"{outcome}: " + "; ".join(reasons[:2])
        if rng.random() < 0.06:
            rationale = ""
        if rng.random() < 0.04:
            reasons = []
        # stored as the capture path stores it: a 64-hex pseudonym (here of a synthetic applicant number)
        subject_id = hashlib.sha256(f"subj-{rng.randrange(0, max(n // 3, 1)):05d}".encode()).hexdigest()
        automation = rng.choice(
            (semconv.Automation.AUTOMATED.value, semconv.Automation.AUTOMATED.value, semconv.Automation.HUMAN_IN_LOOP.value)
        )
        review_required = bool(confidence is not None and confidence < 0.6) or outcome == "refer"
        inputs = json.dumps({"income": rng.randrange(20_000, 200_000), "segment": segment}, sort_keys=True)
        digest = hashlib.sha256(inputs.encode()).hexdigest()
        decision_id = new_id()
        chain_prev = prev_hash
        if i == n // 2 and n >= 20:
            chain_prev = "0" * 64  # a tampered / missing predecessor
            data.broken_chain.append(decision_id)
        this_hash = ""  # set below, once every attribute the hash covers is known
        task_run_id = new_id()
        task_name = "score-application" if decision_type == "credit.approval" else "triage-patient"
        parent = task_span(task_run_id, task_name, flow_run_id, at - 2_000_000)
        record = SeededDecision(
            decision_id=decision_id,
            timestamp_ns=at,
            decision_type=decision_type,
            outcome=outcome,
            options=options,
            confidence=confidence,
            score=score,
            threshold=threshold,
            rationale=rationale,
            reasons=reasons,
            subject_id=subject_id,
            model_name=model_name,
            model_version=model_version,
            segment=segment,
            automation=automation,
            review_required=review_required,
            regulations=regulations,
            retention_class=retention,
            inputs=inputs,
            inputs_digest=digest,
            integrity_seq=i + 1,
            integrity_hash=this_hash,
            integrity_prev_hash=chain_prev,
            flow_run_id=flow_run_id,
            task_run_id=task_run_id,
            flow_name=flow_name,
            task_name=task_name,
        )
        attributes: dict[str, Any] = {
            semconv.DECISION_ID: decision_id,
            semconv.DECISION_TYPE: decision_type,
            semconv.DECISION_OUTCOME: outcome,
            semconv.DECISION_OPTIONS: options,
            semconv.DECISION_SCORE: score,
            semconv.DECISION_THRESHOLD: threshold,
            semconv.DECISION_RATIONALE: rationale,
            semconv.DECISION_REASONS: reasons,
            semconv.DECISION_INPUTS: inputs,
            semconv.DECISION_INPUTS_DIGEST: digest,
            semconv.DECISION_OUTPUT: json.dumps({"outcome": outcome}),
            semconv.DECISION_SUBJECT_ID: subject_id,
            semconv.DECISION_MODEL_NAME: model_name,
            semconv.DECISION_MODEL_VERSION: model_version,
            semconv.DECISION_MODEL_PROVIDER: "in-house",
            semconv.DECISION_POLICY_VERSION: "policy-2026.1",
            semconv.DECISION_AUTOMATION: automation,
            semconv.DECISION_REVIEW_REQUIRED: review_required,
            semconv.DECISION_REGULATIONS: regulations,
            semconv.DECISION_RETENTION_CLASS: retention,
            semconv.DECISION_REDACTED: ["inputs.ssn"] if i % 7 == 0 else [],
            semconv.DECISION_INTEGRITY_CHAIN: SEED_CHAIN,
            semconv.DECISION_INTEGRITY_SEQ: i + 1,
            semconv.DECISION_INTEGRITY_HASH: this_hash,
            semconv.DECISION_INTEGRITY_PREV_HASH: chain_prev,
            semconv.DECISION_SOURCE: semconv.DecisionSource.EXPLICIT.value,
            semconv.DECISION_PSEUDONYM_KEY_ID: "seedkey000000000",
            semconv.DECISION_SEGMENT: segment,
            semconv.GEN_AI_REQUEST_MODEL: model_name,
            semconv.PREFECT_FLOW_RUN_ID: flow_run_id,
            semconv.PREFECT_TASK_RUN_ID: task_run_id,
            semconv.PREFECT_FLOW_NAME: flow_name,
            semconv.PREFECT_TASK_NAME: task_name,
        }
        term = _RETENTION.term(datetime.fromtimestamp(at / 1e9, tz=timezone.utc), retention, regulations)
        attributes.update({
            semconv.DECISION_RETENTION_UNTIL: term.retain_until.isoformat(),
            semconv.DECISION_RETENTION_BASIS: term.basis,
            semconv.DECISION_RETENTION_OBLIGATION_UNTIL: term.obligation_until.isoformat(),
            semconv.DECISION_RETENTION_POLICY: _RETENTION.policy_id,
        })
        if confidence is not None:
            attributes[semconv.DECISION_CONFIDENCE] = confidence
        this_hash = hashlib.sha256(
            chain_material(chain_prev, i + 1, decision_id, at, record_digest(attributes))
        ).hexdigest()
        attributes[semconv.DECISION_INTEGRITY_HASH] = record.integrity_hash = prev_hash = this_hash
        span = tracer.start_span(
            semconv.DECISION_SPAN_PREFIX + decision_type,
            context=trace.set_span_in_context(parent),
            start_time=at,
            attributes=attributes,
        )
        ctx = span.get_span_context()
        record.trace_id, record.span_id = ctx.trace_id, ctx.span_id
        span.end(end_time=at + 1_000_000)
        parent.end(end_time=at + 3_000_000)
        data.decisions.append(record)

        # Reviews: most decisions that need one, plus a few others.
        if (review_required and rng.random() < 0.7) or rng.random() < 0.08:
            fast = rng.random() < 0.2
            delay_ns = int((rng.uniform(0.2, 3.0) if fast else rng.uniform(60, 7200)) * 1e9)
            action = rng.choice(("approve", "approve", "override"))
            new_outcome = outcome
            if action == "override":
                new_outcome = next(o for o in options if o != outcome)
            review = SeededReview(
                review_id=new_id(),
                decision_id=decision_id,
                timestamp_ns=at + delay_ns,
                reviewer_id=rng.choice(REVIEWERS),
                action=action,
                reason="checked documents" if action == "approve" else "analyst judgement differs",
                original_outcome=outcome,
                new_outcome=new_outcome,
                decided_at_ns=at,
            )
            review_span = tracer.start_span(
                semconv.REVIEW_SPAN_NAME,
                start_time=review.timestamp_ns,
                links=[Link(ctx)],
                attributes={
                    semconv.DECISION_ID: decision_id,
                    semconv.DECISION_REVIEW_ID: review.review_id,
                    semconv.DECISION_REVIEW_REVIEWER_ID: review.reviewer_id,
                    semconv.DECISION_REVIEW_ACTION: action,
                    semconv.DECISION_REVIEW_REASON: review.reason,
                    semconv.DECISION_REVIEW_ORIGINAL_OUTCOME: outcome,
                    semconv.DECISION_REVIEW_NEW_OUTCOME: new_outcome,
                    semconv.DECISION_REVIEW_DECIDED_AT: at,
                    semconv.DECISION_PSEUDONYM_KEY_ID: "seedkey000000000",
                },
            )
            review_span.end(end_time=review.timestamp_ns + 500_000)
            data.reviews.append(review)

        # Completeness: every 20th flow slot has a task run that recorded nothing.
        if i % 20 == 5:
            orphan = new_id()
            span = task_span(orphan, task_name, flow_run_id, at + 5_000_000)
            span.set_status(Status(StatusCode.ERROR, "task crashed before deciding"))
            span.end(end_time=at + 9_000_000)
            data.orphan_task_runs.append(orphan)

    # Flow-run spans carry the number of decisions the run captured; the last run claims one
    # more than it stored (a lost record the delivery_completeness query must show).
    per_run = Counter(d.flow_run_id for d in data.decisions)
    runs = list(dict.fromkeys(d.flow_run_id for d in data.decisions))
    for position, run_id in enumerate(runs):
        first = min(d.timestamp_ns for d in data.decisions if d.flow_run_id == run_id)
        name = next(d.flow_name for d in data.decisions if d.flow_run_id == run_id)
        captured = per_run[run_id] + (1 if position == len(runs) - 1 else 0)
        data.flow_captured[run_id] = captured
        flow_span = tracer.start_span(
            f"{name}-{run_id[:4]}",
            start_time=first - 10_000_000,
            attributes={
                semconv.PREFECT_RUN_TYPE: "flow",
                semconv.PREFECT_RUN_ID: run_id,
                semconv.PREFECT_RUN_NAME: f"{name}-{run_id[:4]}",
                semconv.DECISION_FLOW_CAPTURED: captured,
            },
        )
        flow_span.end(end_time=first + 60_000_000_000)

    provider.shutdown()
    data.spans = list(memory.get_finished_spans())
    return data


def seed_decisions(target: Any, n: int = 300, seed: int = 7, *, redeliver: int = 25, **kwargs: Any) -> SeedData:
    """Build the data set and export it through *target* (a ``ClickHouseSpanExporter`` or a client).

    The first *redeliver* decision spans are exported a second time, as a retrying
    shipper would: every query must still count each decision once.
    """
    from opentelemetry.sdk.trace.export import SpanExportResult

    from otel_decisions.store.exporter import ClickHouseSpanExporter

    exporter = target if isinstance(target, ClickHouseSpanExporter) else ClickHouseSpanExporter(client=target)
    data = build_seed(n, seed, **kwargs)
    if exporter.export(data.spans) is not SpanExportResult.SUCCESS:
        raise RuntimeError("seed export failed; see the otel_decisions.store.exporter log")
    again = [s for s in data.spans if s.name.startswith(semconv.DECISION_SPAN_PREFIX)][:redeliver]
    if again and exporter.export(again) is not SpanExportResult.SUCCESS:
        raise RuntimeError("seed re-delivery failed")
    data.redelivered = len(again)
    data.redelivered_ids = [str(s.attributes[semconv.DECISION_ID]) for s in again]
    return data


def days_after_start(days: float) -> datetime:
    """``SEED_START`` plus *days* (handy for period parameters)."""
    return SEED_START + timedelta(days=days)


_SESSION_CHDB: list[str] = []


def session_chdb_path() -> str:
    """One embedded database directory per test process: one owner serves all its databases."""
    if not _SESSION_CHDB:
        import tempfile

        _SESSION_CHDB.append(tempfile.mkdtemp(prefix="otel-decisions-chdb-"))
    return _SESSION_CHDB[0]


def fresh_chdb_dsn(prefix: str = "t") -> str:
    """A DSN for a new, empty database inside the process's chDB directory."""
    return f"chdb://{session_chdb_path()}?database=otel_{prefix.replace('-', '_')}_{uuid.uuid4().hex[:10]}"


def stop_session_store() -> None:
    """Stop the owner of this process's embedded database directory (end of the test session)."""
    if _SESSION_CHDB:
        from pathlib import Path

        from otel_decisions.store import embedded

        embedded.stop_server(Path(_SESSION_CHDB[0]))
