"""The ``capdecisions`` fixture users get (pytest plugin entry point), on a real Prefect flow."""

from __future__ import annotations

import pytest
from prefect import flow, task

import otel_decisions

pytestmark = pytest.mark.usefixtures("prefect_harness")


@task
def score(applicant: dict) -> dict:
    return {"decision": "refer", "confidence": 0.61, "reasons": ["thin credit file"]}


@flow
def underwrite(applicant: dict) -> dict:
    return score(applicant)


def test_capdecisions_sees_what_a_flow_records(capdecisions) -> None:  # noqa: ANN001
    underwrite({"applicant_id": "A-7", "email": "a7@example.test", "income": 41_000})
    (decision,) = capdecisions.decisions()
    assert decision["decision.outcome"] == "refer"
    assert decision["decision.confidence"] == 0.61
    assert decision["decision.reasons"] == ("thin credit file",)
    assert "a7@example.test" not in decision["decision.inputs"]  # the privacy pipeline ran
    assert "inputs.applicant.email" in decision["decision.redacted"]
    assert capdecisions.checkpoints()  # the flow's end checkpointed the chain
    review = otel_decisions.record_review(decision["decision.id"], reviewer="analyst-2", action="approve")
    (recorded,) = capdecisions.reviews()
    assert recorded["decision.review.id"] == review
    assert recorded["decision.review.reviewer.id"] == capdecisions.pseudonym("analyst-2")


def test_capdecisions_starts_empty_for_each_test(capdecisions) -> None:  # noqa: ANN001
    assert capdecisions.decisions() == []
