"""A real Prefect flow instrumented by otel-decisions, run in its own interpreter by the e2e tests.

OpenTelemetry's global tracer provider can be set once per process, and chDB allows one engine
per process, so each flow run gets a fresh interpreter. Exporters come from the environment
(``OTEL_DECISIONS_EXPORTERS``, ``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_DECISIONS_DSN``...).
Prints one JSON line with the ids the test looks for.

Example::

    OTEL_DECISIONS_EXPORTERS=otlp OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318 \
        python tests/e2e/flow_app.py
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")

import otel_decisions  # noqa: E402

RATIONALE = os.environ.get("E2E_RATIONALE", "income well above the threshold; no delinquencies")


def main() -> int:
    otel_decisions.configure(service_name=os.environ.get("E2E_SERVICE_NAME", "e2e-credit"))
    otel_decisions.PrefectInstrumentor().instrument()

    from prefect import flow, task

    @task(name="score-applicant")
    def score_applicant(applicant: dict[str, object]) -> dict[str, str | None]:
        recorded = otel_decisions.record_decision(
            type="credit.approval",
            outcome="approve",
            confidence=0.87,
            score=0.91,
            threshold=0.5,
            reasons=["income_to_debt", "payment_history"],
            rationale=RATIONALE,
            inputs=applicant,
            model_name="credit-gbm",
            model_version="3.1.0",
        )
        return {"decision_id": recorded.id, "trace_id": recorded.trace_id, "span_id": recorded.span_id}

    @flow(name="e2e-credit-flow")
    def credit_flow() -> dict[str, str | None]:
        return score_applicant({"income": 85000, "debt": 12000, "email": "jane@example.com"})

    # A private Prefect API for this process (the ephemeral-mode default times out on a busy
    # 2-core machine; the harness waits up to 120 s). Heartbeats off: no 1 s wait at the end.
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
        result = credit_flow()
    ok = otel_decisions.force_flush(30_000)
    otel_decisions.shutdown()
    print(json.dumps({**result, "flushed": ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
