"""A small real Prefect flow that records decisions into the embedded database, run as ``python decision_flow.py``.

otel-decisions is configured at import (ClickHouse exporter, the DSN in ``DECISION_FLOW_DSN``),
as in a user's script; the flow runs ``DECISION_FLOW_K`` tasks, each recording one decision of
type ``DECISION_FLOW_TYPE`` (so a test can count one run's decisions by type). Prints
``RECORDED <n> <flow_run_id>`` when the flow has returned; the process then exits normally, and
otel-decisions' atexit shutdown delivers what is still pending.

Example::

    DECISION_FLOW_DSN=chdb:///tmp/store DECISION_FLOW_DATA_DIR=/tmp/data DECISION_FLOW_K=3 \\
        DECISION_FLOW_TYPE=flowtest.run01 python tests/apps/decision_flow.py
"""

from __future__ import annotations

import os

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

import otel_decisions

otel_decisions.configure(
    exporters=["clickhouse"],
    dsn=os.environ["DECISION_FLOW_DSN"],
    data_dir=os.environ["DECISION_FLOW_DATA_DIR"],
    hmac_key=os.environ.get("DECISION_FLOW_HMAC_KEY", "decision-flow-hmac-key-0123456789"),
    service_name="decision-flow",
)
otel_decisions.PrefectInstrumentor().instrument()

DECISION_TYPE = os.environ.get("DECISION_FLOW_TYPE", "flowtest.decision")


@task(cache_policy=NO_CACHE)
def decide(applicant: int) -> str:
    outcome = "approve" if applicant % 3 else "deny"
    otel_decisions.record_decision(
        type=DECISION_TYPE,
        outcome=outcome,
        confidence=0.5 + applicant / 100,
        reasons=["score above threshold" if outcome == "approve" else "score below threshold"],
        inputs={"applicant": applicant},
    )
    return outcome


@flow(name="decision-flow")
def decision_flow(k: int) -> tuple[str, list[str]]:
    return str(flow_run.get_id()), [decide(i) for i in range(k)]


if __name__ == "__main__":
    run_id, outcomes = decision_flow(int(os.environ.get("DECISION_FLOW_K", "3")))
    print("RECORDED", len(outcomes), run_id, flush=True)
