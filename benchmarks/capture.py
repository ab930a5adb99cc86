"""Cost of capturing one decision, against a bare OTel SDK span and a trivial Prefect task run.

Run: ``.venv/bin/python benchmarks/capture.py``. All three are measured in this one run on
this machine (which is noisy), and only their ratios are meant to be compared:

- ``bare span``: an SDK span with the same 12 attributes a decision carries in its typed
  fields, started and ended through the same tracer provider and processor;
- ``record_decision``: one call with a 20-field input under the default privacy policy;
- ``trivial task``: a Prefect task that returns a constant, run inside a warm flow.

It also prints where the time goes, measured the same way: an SDK span carrying every
attribute ``record_decision`` actually recorded (the SDK's share of a decision: what is left
is validation, the privacy pipeline, the inputs digest and the integrity chain).

Targets (issue 2): record_decision <= 2x the bare span, and <= 2% of a trivial task run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "ERROR")

from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult  # noqa: E402

import otel_decisions  # noqa: E402
from otel_decisions import semconv  # noqa: E402


class DiscardExporter(SpanExporter):
    """Drops every span; keeps the attributes of the last decision span (to size the SDK's share)."""

    last_decision: dict | None = None
    keep_next = False  # set around the one call whose attributes are kept: timed runs export for free

    def export(self, spans):  # type: ignore[override]
        if self.keep_next:
            for span in spans:
                if span.name.startswith("decision "):
                    self.last_decision = dict(span.attributes)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


INPUTS = {
    "applicant_id": "A-000123", "first_name": "Marisol", "last_name": "Quennell", "ssn": "912-45-6789",
    "email": "marisol@example.com", "income": 52000, "debt": 12000, "age": 41, "employment_years": 6,
    "loan_amount": 15000, "term_months": 36, "credit_history_years": 12, "open_accounts": 4,
    "delinquencies": 0, "utilisation": 0.31, "home_owner": True, "purpose": "car", "region": "north-west",
    "channel": "web", "notes": "applied online, salary verified",
}
assert len(INPUTS) == 20


def per_call(fn, n: int, repeats: int = 7) -> float:
    """Median seconds per call over *repeats* rounds of *n* calls."""
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            fn()
        rounds.append((time.perf_counter() - start) / n)
    return statistics.median(rounds)


def main() -> int:
    data_dir = tempfile.mkdtemp(prefix="otel-decisions-bench-")
    discard = DiscardExporter()
    otel_decisions.configure(exporters=["none"], span_exporters=[discard], durable=False,
                             data_dir=data_dir, hmac_key="bench-key-0123456789abcdef")
    from opentelemetry import trace

    # the scope of otel-decisions' own records: a bare span passes its processors as a decision record does
    tracer = trace.get_tracer(semconv.INSTRUMENTATION_SCOPE)
    attrs = {
        "decision.id": "9c0b7d52-3f0e-4c55-9d1e-1f0f5c1f2a11", "decision.type": "credit.approval",
        "decision.outcome": "approve", "decision.confidence": 0.83, "decision.score": 0.83,
        "decision.threshold": 0.5, "decision.rationale": "income and history sufficient",
        "decision.reasons": ["income", "history", "utilisation", "term"], "decision.subject.id": "ab" * 32,
        "decision.model.name": "credit-gbm", "decision.model.version": "3.2.0", "decision.policy.version": "2026-10",
    }
    assert len(attrs) == 12

    def bare_span() -> None:
        span = tracer.start_span("decision credit.approval", attributes=attrs)
        span.end()

    def record() -> None:
        otel_decisions.record_decision(
            type="credit.approval", outcome="approve", confidence=0.83, score=0.83, threshold=0.5,
            rationale="income and history sufficient", reasons=["income", "history", "utilisation", "term"],
            subject_id="A-000123", model_name="credit-gbm", model_version="3.2.0", policy_version="2026-10",
            inputs=INPUTS,
        )

    # The attributes one record_decision call records, as the exporter received them.
    otel_decisions.force_flush()
    discard.keep_next = True
    record()
    otel_decisions.force_flush()
    discard.keep_next = False
    recorded = dict(discard.last_decision or {})
    assert recorded, "no decision span reached the exporter"

    def decision_sized_span() -> None:
        span = tracer.start_span("decision credit.approval", attributes=recorded)
        span.end()

    for fn in (bare_span, decision_sized_span, record):
        per_call(fn, 2000, repeats=1)  # warm up
    # interleave them so machine noise hits all alike
    bare_runs, full_runs, record_runs = [], [], []
    for _ in range(5):
        bare_runs.append(per_call(bare_span, 3000, repeats=3))
        full_runs.append(per_call(decision_sized_span, 3000, repeats=3))
        record_runs.append(per_call(record, 3000, repeats=3))
    bare = statistics.median(bare_runs)
    full = statistics.median(full_runs)
    rec = statistics.median(record_runs)

    from prefect import flow, task
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    @task
    def trivial() -> int:
        return 1

    n_tasks = 200

    @flow
    def many() -> None:
        for _ in range(n_tasks):
            trivial()

    with prefect_test_harness(server_startup_timeout=120), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        many()  # warm
        task_times = []
        for _ in range(3):
            start = time.perf_counter()
            many()
            task_times.append((time.perf_counter() - start) / n_tasks)
    task_run = statistics.median(task_times)

    print(f"bare SDK span (12 attributes):                 {bare * 1e6:9.1f} us")
    print(f"record_decision (20-field input, default policy): {rec * 1e6:6.1f} us")
    print(f"  of which the SDK span with its {len(recorded)} attributes: {full * 1e6:8.1f} us"
          f"   ({full / bare:.2f}x the bare span)")
    print(f"  the rest (validation, privacy, digests, chain):  {(rec - full) * 1e6:5.1f} us")
    print(f"trivial Prefect task run (warm flow):          {task_run * 1e6:9.1f} us")
    print(f"ratio record_decision / bare span:             {rec / bare:9.2f}x   (target <= 2x)")
    print(f"record_decision as share of a trivial task:    {100 * rec / task_run:9.2f}%   (target <= 2%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
