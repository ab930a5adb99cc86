"""Two synthetic applicants decided in real Prefect task runs, for the erasure test in tests/test_lifecycle.py.

``python erasure_flow.py`` records, through ``configure()`` + ``instrument()`` into the store named by
the environment, one credit decision per applicant in its own task run (standard retention: no legal
obligation, so an erasure request removes it).
"""

from __future__ import annotations

from prefect import flow, task

import otel_decisions

APPLICANTS = [
    {"applicant_id": "APP-90001", "first_name": "Ilse", "last_name": "Marrowby", "income": 38_000},
    {"applicant_id": "APP-90002", "first_name": "Oren", "last_name": "Talliver", "income": 91_000},
]


@task
def decide(applicant: dict) -> str:
    decision = otel_decisions.record_decision(
        type="credit.approval",
        outcome="deny" if applicant["income"] < 50_000 else "approve",
        confidence=0.8,
        inputs=applicant,
        reasons=["Income insufficient for amount of credit requested"],
        subject_id=applicant["applicant_id"],
        retention_class="standard",
        model_name="credit-lr",
        model_version="3.2.0",
    )
    return decision.id


@flow(name="erasure-demo")
def decide_all() -> list[str]:
    return [decide(applicant) for applicant in APPLICANTS]


if __name__ == "__main__":
    otel_decisions.configure(exporters=["clickhouse"])
    otel_decisions.PrefectInstrumentor().instrument()
    print(decide_all())
    otel_decisions.force_flush()
