"""A flow that asks a human to review its AI decision in the Prefect UI (tests/test_prefect_ui.py).

Configured by the otel-decisions Prefect plugin from the environment (no setup code). The applicant
is synthetic; the policy masks the id and the e-mail address in every record and in the form.

    python review_flow.py pause          # the flow run pauses in this process until the form is answered
    python review_flow.py deploy POOL    # a deployment (suspend=True) of this flow to a process work pool
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from prefect import flow, task

import otel_decisions

APPLICANT = {
    "applicant_id": "APP-SYN-0042",
    "email": "sam.sample@example.org",
    "annual_income": 48000,
    "debt_to_income": 0.46,
    "months_at_address": 9,
}
REASONS = ["Debt-to-income ratio above 0.40", "Short time at current address", "Limited credit history"]


@task(persist_result=True)  # a resumed (suspended) run finds the decision's id in Prefect's cache: not made again
def score(applicant: dict) -> str:
    decision = otel_decisions.record_decision(
        type="credit.approval",
        outcome="deny",
        options=("approve", "deny", "refer"),
        confidence=0.58,
        score=0.42,
        threshold=0.5,
        reasons=REASONS,
        rationale="P(approve)=0.420 against threshold 0.50: deny.",
        inputs=applicant,
        subject_id=applicant["applicant_id"],
        model_name="credit-risk-lr",
        model_version="3.2.0",
        review_required=True,
        regulations=("FINRA-4511", "REG-B"),
    )
    return decision.id  # only the id goes to Prefect's result storage, never the applicant's data


@flow(name="review-underwriting")
def underwrite(suspend: bool = False, timeout: int = 600) -> dict:
    decision_id = score(APPLICANT)
    review = otel_decisions.request_review(decision_id, timeout=timeout, suspend=suspend, poll_interval=1)
    result = {"decision_id": decision_id, "action": review.action, "outcome": review.outcome,
              "review_id": review.review_id, "waited_seconds": review.waited_seconds}
    print("RESULT " + json.dumps(result), flush=True)
    return result


@flow(name="review-timeout")
def timing_out() -> dict:
    decision_id = score(APPLICANT)
    try:
        otel_decisions.request_review(decision_id, timeout=2, poll_interval=1)
    except otel_decisions.ReviewTimeout as exc:
        return {"decision_id": decision_id, "timed_out": list(exc.decision_ids)}
    return {"decision_id": decision_id, "timed_out": []}


if __name__ == "__main__":
    if sys.argv[1] == "pause":
        underwrite()
    elif sys.argv[1] == "timeout":
        print("RESULT " + json.dumps(timing_out()), flush=True)
    elif sys.argv[1] == "deploy":
        flow.from_source(str(Path(__file__).parent), "review_flow.py:underwrite").deploy(
            name="suspended-review", work_pool_name=sys.argv[2], parameters={"suspend": True}
        )
