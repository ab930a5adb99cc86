"""Review forms and decision artifacts on Prefect's test harness (a real Prefect server in the session).

A reviewer thread answers each form the way the UI does (``resume_flow_run`` with the run input, the
call behind the UI's Resume button), after reading what Prefect stores for the form: its schema and
its markdown description. The browser tests of the real UI are in tests/test_prefect_ui.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prefect import flow, task

import otel_decisions
from otel_decisions import semconv
from otel_decisions.catalogue import run_query
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.store.client import get_client
from otel_decisions.store.exporter import ClickHouseSpanExporter
from otel_decisions.store.schema import apply_migrations
from tests.conftest import TEST_HMAC_KEY
from tests.seed import fresh_chdb_dsn

SYNTHETIC = {"applicant_id": "APP-SYN-7781", "email": "robin.roe@example.net", "annual_income": 61000}


def _decide(n: int, **extra: Any) -> otel_decisions.Decision:
    fields: dict[str, Any] = {
        "type": "credit.approval", "outcome": "deny" if n % 2 else "approve", "options": ("approve", "deny", "refer"),
        "confidence": 0.6 + n / 100, "score": 0.4 + n / 100, "threshold": 0.5,
        "reasons": [f"Reason {n}a", f"Reason {n}b"], "inputs": {**SYNTHETIC, "n": n},
        "subject_id": f"{SYNTHETIC['applicant_id']}-{n}", "model_name": "credit-risk-lr", "model_version": "3.2.0",
        "review_required": True,
    }
    fields.update(extra)
    return otel_decisions.record_decision(**fields)


@task
def decide(n: int) -> otel_decisions.Decision:
    return _decide(n)


class Reviewer(threading.Thread):
    """Answers the paused flow run's forms in turn: each answer waits for its form key, reads the form's
    description and schema as the UI does, then resumes the run with the answer."""

    def __init__(self, answers: list[tuple[str, dict[str, Any]]]) -> None:
        super().__init__(daemon=True)
        self.answers = answers
        self.forms: list[dict[str, Any]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            from prefect.client.orchestration import get_client as prefect_client
            from prefect.flow_runs import resume_flow_run
            from prefect.input import actions

            for key, answer in self.answers:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    with prefect_client(sync_client=True) as client:
                        runs = [r for r in client.read_flow_runs() if r.state and r.state.is_paused()
                                and r.state.state_details.pause_key == key]
                    # Prefect saves the form (schema, description) just after the run turns PAUSED
                    if runs and actions.read_flow_run_input(f"paused-{key}-schema", flow_run_id=runs[0].id):
                        break
                    time.sleep(0.2)
                else:
                    raise AssertionError(f"no flow run paused on form {key}")
                run = runs[0]
                self.forms.append({
                    "run_id": str(run.id),
                    "description": actions.read_flow_run_input(f"paused-{key}-description", flow_run_id=run.id),
                    "schema": actions.read_flow_run_input(f"paused-{key}-schema", flow_run_id=run.id),
                })
                resume_flow_run(run.id, run_input=answer)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc


def _spans(memory: InMemorySpanExporter, name: str) -> list[Any]:
    otel_decisions.force_flush()
    return [s for s in memory.get_finished_spans() if s.name == name]


def _artifacts(flow_run_id: str) -> dict[str, Any]:
    from prefect.client.orchestration import get_client as prefect_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with prefect_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(
            any_=[uuid.UUID(flow_run_id)])))
    return {a.key: a for a in found}


def _table(artifact: Any) -> list[dict[str, Any]]:
    return json.loads(artifact.data) if isinstance(artifact.data, str) else list(artifact.data)


# --- forms ---------------------------------------------------------------------------------------
def test_one_form_for_a_queue_of_decisions(captured: InMemorySpanExporter) -> None:
    @flow(name="review-queue")
    def queue() -> tuple[str, list[Any], list[str]]:
        from prefect.runtime import flow_run

        decided = [decide(n) for n in (1, 2, 3)]
        results = otel_decisions.request_reviews(decided, timeout=60, poll_interval=0.2)
        return flow_run.id, results, [d.id for d in decided]

    reviewer = Reviewer([("otel-review-1", {
        "d1_action": "approve", "d1_reason": "",
        "d2_action": "override", "d2_new_outcome": "deny", "d2_reason": "Second job not verified",
        "d3_action": "reject", "d3_reason": "Stale bureau file: score again",
        "reason": "File reviewed", "reviewer": "analyst-07",
    })])
    reviewer.start()
    run_id, results, ids = queue()
    reviewer.join(30)
    assert reviewer.error is None, reviewer.error
    (form,) = reviewer.forms
    fields = set(form["schema"]["properties"])
    assert fields == {"reviewer", "reason", *(f"d{i}_{f}" for i in (1, 2, 3) for f in ("action", "new_outcome", "reason"))}
    assert form["schema"]["properties"]["d1_action"]["enum"] == ["approve", "override", "escalate", "reject"]
    assert set(form["schema"]["required"]) == {"d1_action", "d2_action", "d3_action", "reason", "reviewer"}
    description = form["description"]
    assert "Human review of 3 AI decisions" in description
    plain = description.replace("\\", "")  # markdown escapes out: robin\.roe is robin.roe
    for decision_id in ids:
        assert f"`{decision_id}`" in description
    assert "robin.roe@example.net" not in plain and "APP-SYN-7781" not in plain and "61000" in plain
    assert [(r.decision_id, r.action, r.outcome) for r in results] == [
        (ids[0], "approve", "deny"), (ids[1], "override", "deny"), (ids[2], "reject", None)]
    reviews = {s.attributes[semconv.DECISION_ID]: s for s in _spans(captured, semconv.REVIEW_SPAN_NAME)}
    assert set(reviews) == set(ids)
    assert reviews[ids[0]].attributes[semconv.DECISION_REVIEW_REASON] == "File reviewed"  # the shared reason
    assert reviews[ids[1]].attributes[semconv.DECISION_REVIEW_NEW_OUTCOME] == "deny"
    assert reviews[ids[1]].attributes[semconv.DECISION_REVIEW_ORIGINAL_OUTCOME] == "approve"
    for decision_id, span in reviews.items():
        assert re.fullmatch(r"[0-9a-f]{64}", span.attributes[semconv.DECISION_REVIEW_REVIEWER_ID])
        assert [link.attributes[semconv.DECISION_ID] for link in span.links] == [decision_id]
        assert span.attributes[semconv.PREFECT_FLOW_RUN_ID] == str(run_id)
    requested = [s for s in _spans(captured, semconv.EVENT_SPAN_NAME)
                 if s.attributes[semconv.DECISION_EVENT_TYPE] == "review_requested"]
    assert sorted(s.attributes[semconv.DECISION_ID] for s in requested) == sorted(ids)
    table = _table(_artifacts(str(run_id))["decisions-review-queue"])
    assert [(row["decision_id"], row["review"]) for row in table] == [
        (ids[0], "approved"), (ids[1], "overridden: deny"), (ids[2], "rejected")]
    # what Prefect keeps of the answer: the reviews as recorded; the answer as typed is deleted
    from prefect.input import actions

    assert actions.read_flow_run_input("paused-otel-review-1-response", flow_run_id=run_id) is None
    kept = actions.read_flow_run_input("otel-review-1-recorded", flow_run_id=run_id)
    assert [r["review_id"] for r in kept["reviews"]] == [r.review_id for r in results]
    assert "analyst-07" not in json.dumps(kept)
    assert {r["reviewer_id"] for r in kept["reviews"]} == {reviews[ids[0]].attributes[semconv.DECISION_REVIEW_REVIEWER_ID]}


def test_an_answer_that_cannot_be_recorded_is_asked_again(captured: InMemorySpanExporter) -> None:
    @flow(name="review-again")
    def again() -> Any:
        return otel_decisions.request_review(decide(5), timeout=60, poll_interval=0.2)

    reviewer = Reviewer([
        ("otel-review-1", {"action": "override", "reason": "Looks wrong", "reviewer": "analyst-07"}),
        ("otel-review-2", {"action": "override", "new_outcome": "maybe", "reason": "Looks wrong",
                           "reviewer": "analyst-07"}),
        ("otel-review-3", {"action": "override", "new_outcome": "approve", "reason": "Income verified",
                           "reviewer": "analyst-07"}),
    ])
    reviewer.start()
    result = again()
    reviewer.join(30)
    assert reviewer.error is None, reviewer.error
    assert (result.action, result.outcome, result.original_outcome) == ("override", "approve", "deny")
    assert "previous answer was not recorded" not in reviewer.forms[0]["description"]
    assert "An override needs the new outcome" in reviewer.forms[1]["description"]
    assert "is not one of approve, deny, refer" in reviewer.forms[2]["description"].replace("\\", "")
    reviews = [s for s in _spans(captured, semconv.REVIEW_SPAN_NAME) if s.attributes[semconv.DECISION_ID] == result.decision_id]
    assert len(reviews) == 1 and reviews[0].attributes[semconv.DECISION_REVIEW_ID] == result.review_id


def test_async_flows_ask_with_arequest_review(captured: InMemorySpanExporter) -> None:
    @task
    async def adecide() -> otel_decisions.Decision:
        return _decide(7)

    @flow(name="review-async")
    async def reviewed() -> Any:
        return await otel_decisions.arequest_review(await adecide(), timeout=60, poll_interval=0.2)

    import asyncio

    reviewer = Reviewer([("otel-review-1", {"action": "escalate", "reason": "Senior sign-off", "reviewer": "a-1"})])
    reviewer.start()
    result = asyncio.run(reviewed())
    reviewer.join(30)
    assert reviewer.error is None, reviewer.error
    assert (result.action, result.outcome, result.original_outcome) == ("escalate", None, "deny")  # nothing stands yet
    (span,) = [s for s in _spans(captured, semconv.REVIEW_SPAN_NAME) if s.attributes[semconv.DECISION_ID] == result.decision_id]
    assert span.attributes[semconv.DECISION_REVIEW_ACTION] == "escalate"


def test_request_review_says_where_it_can_be_called(captured: InMemorySpanExporter) -> None:
    recorded = _decide(1)
    with pytest.raises(OtelDecisionsError, match="outside one"):
        otel_decisions.request_review(recorded)

    @flow(name="review-in-task")
    def in_task() -> None:
        @task
        def inner() -> None:
            otel_decisions.request_review(recorded)

        inner()

    with pytest.raises(OtelDecisionsError, match="call it in the flow's body"):
        in_task()

    @flow(name="review-bad-input")
    def bad(kind: str) -> None:
        if kind == "timeout":
            otel_decisions.request_review(recorded, timeout=0)
        elif kind == "id":
            otel_decisions.request_review("not-a-decision")
        else:
            otel_decisions.request_reviews([recorded, recorded])

    for kind, field in (("timeout", "timeout"), ("id", "decision"), ("twice", "decisions")):
        with pytest.raises(otel_decisions.errors.DecisionValidationError) as raised:
            bad(kind)
        assert raised.value.field == field

    @flow(name="review-suspend-here")
    def suspend_here() -> None:
        otel_decisions.request_review(recorded, suspend=True)

    with pytest.raises(OtelDecisionsError, match="needs a flow run of a deployment"):
        suspend_here()

    @flow(name="review-unknown")
    def unknown() -> None:
        otel_decisions.request_review(str(uuid.uuid4()))

    with pytest.raises(otel_decisions.ReviewError, match="cannot be shown to a reviewer"):
        unknown()
    otel_decisions.force_flush()
    asked = [s for s in captured.get_finished_spans() if s.name == semconv.EVENT_SPAN_NAME]
    assert asked == [], "a request was recorded though no reviewer was asked"

    @flow(name="review-sync-in-async")
    async def blocking() -> None:
        otel_decisions.request_review(recorded)

    import asyncio

    with pytest.raises(OtelDecisionsError, match="await arequest_review"):
        asyncio.run(blocking())


# --- artifacts -------------------------------------------------------------------------------------
def test_every_flow_run_gets_its_decision_artifacts(captured: InMemorySpanExporter) -> None:
    @flow(name="Scoring Run")
    def scoring() -> str:
        from prefect.runtime import flow_run

        for n in (1, 2, 3):
            decide(n)
        otel_decisions.record_review(decide(4), reviewer="analyst-07", action="override",
                                     new_outcome="refer to robin.roe@example.net")
        return str(flow_run.id)

    run_id = scoring()
    artifacts = _artifacts(run_id)
    assert set(artifacts) == {"decisions-scoring-run", "decisions-scoring-run-summary"}
    rows = _table(artifacts["decisions-scoring-run"])
    assert [r["outcome"] for r in rows] == ["deny", "approve", "deny", "approve"]
    assert [r["confidence"] for r in rows] == [0.61, 0.62, 0.63, 0.64]
    assert {r["model_version"] for r in rows} == {"credit-risk-lr 3.2.0"}
    assert [r["review"] for r in rows[:3]] == ["awaiting review"] * 3
    assert rows[3]["review"].startswith("overridden: refer to ") and "robin.roe" not in rows[3]["review"]
    summary = artifacts["decisions-scoring-run-summary"].data
    assert "| Decisions recorded | **4** |" in summary
    assert "| Below their threshold | 4 |" in summary  # scores 0.41..0.44 against 0.5
    assert "| Awaiting review | **3** |" in summary and "| Overrides recorded in this run | 1 |" in summary
    assert "| deny | 2 |" in summary and "| approve | 2 |" in summary
    assert f"otel-decisions report --flow-run {run_id}" in summary and "otel-decisions export-trace " in summary
    text = json.dumps([_table(artifacts["decisions-scoring-run"]), summary]).replace("\\", "")
    for clear in ("robin.roe@example.net", "APP-SYN-7781", "analyst-07", "61000"):
        assert clear not in text


def test_artifacts_of_a_failing_async_flow_and_the_setting_that_turns_them_off(
    captured: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory
) -> None:
    import asyncio

    seen: dict[str, str] = {}

    @flow(name="failing-async")
    async def failing() -> None:
        from prefect.runtime import flow_run

        seen["run"] = str(flow_run.id)
        _decide(1)
        raise RuntimeError("the bureau feed is down")

    with pytest.raises(RuntimeError, match="bureau feed"):  # the flow's own error, unchanged
        asyncio.run(failing())
    rows = _table(_artifacts(seen["run"])["decisions-failing-async"])
    assert [r["outcome"] for r in rows] == ["deny"]

    otel_decisions.configure(exporters=["none"], span_exporters=[captured], durable=False, hmac_key=TEST_HMAC_KEY,
                             data_dir=str(tmp_path_factory.mktemp("no-artifacts")), flow_artifacts=False,
                             service_name="capture-tests")

    @flow(name="quiet")
    def quiet() -> str:
        from prefect.runtime import flow_run

        decide(1)
        return str(flow_run.id)

    assert _artifacts(quiet()) == {}


# --- the review_response_times question ------------------------------------------------------------
def test_review_response_times(captured: InMemorySpanExporter, tmp_path_factory: pytest.TempPathFactory) -> None:
    dsn = fresh_chdb_dsn("reviews")
    client = get_client(dsn, role="admin")
    apply_migrations(client)
    otel_decisions.configure(exporters=["none"], span_exporters=[captured, ClickHouseSpanExporter(client=client)],
                             durable=False, hmac_key=TEST_HMAC_KEY, service_name="capture-tests",
                             data_dir=str(tmp_path_factory.mktemp("review-times")))
    reviewed, expired, waiting, before = _decide(1), _decide(2), _decide(3), _decide(4)
    # a review recorded before the request is not its answer; a comment is not a review
    otel_decisions.record_review(before, reviewer="analyst-02", action="approve", reason="first look")
    time.sleep(0.01)

    @flow(name="review-times")
    def ask(which: str) -> str:
        from prefect.runtime import flow_run

        if which == "answered":
            otel_decisions.request_reviews([reviewed, before], timeout=60, poll_interval=0.2)
        else:
            with pytest.raises(otel_decisions.ReviewTimeout):
                otel_decisions.request_review(expired, timeout=1, poll_interval=0.2)
        return str(flow_run.id)

    reviewer = Reviewer([("otel-review-1", {"d1_action": "override", "d1_new_outcome": "approve",
                                            "d2_action": "approve", "reason": "checked", "reviewer": "analyst-09"})])
    reviewer.start()
    answered_run = ask("answered")
    reviewer.join(30)
    assert reviewer.error is None, reviewer.error
    expired_run = ask("expired")

    @flow(name="review-retried", retries=1, retry_delay_seconds=0)
    def retried() -> str:
        from prefect.runtime import flow_run

        otel_decisions.request_review(retried_decision, timeout=1, poll_interval=0.2)  # the first try times out
        return str(flow_run.id)

    retried_decision = _decide(5)
    reviewer = Reviewer([("otel-review-2", {"action": "approve", "reason": "ok on retry", "reviewer": "analyst-09"})])
    reviewer.start()
    retried_run = retried()  # the retry's first form is otel-review-1 again: asked, unanswered, so a new one
    reviewer.join(30)
    assert reviewer.error is None, reviewer.error
    due = datetime.now(UTC) + timedelta(hours=2)
    otel_decisions.capture.record_review_request(waiting, requested_by="queue", due_at=due, reference="ticket/9")
    otel_decisions.record_review(waiting, reviewer="analyst-02", action="comment", reason="looking")
    otel_decisions.force_flush()

    everything = run_query(client, "review_response_times", {}).as_dicts()
    status = {(r["decision_id"], r["reference"].rsplit("/", 1)[1]): (r["status"], r["action"]) for r in everything}
    assert status == {
        (reviewed.id, "otel-review-1"): ("reviewed", "override"),
        (before.id, "otel-review-1"): ("reviewed", "approve"),
        (expired.id, "otel-review-1"): ("expired", ""),
        (waiting.id, "9"): ("waiting", ""),
        # timed out, then asked again on the flow run's retry and answered: the first request stays expired
        (retried_decision.id, "otel-review-1"): ("expired", "approve"),
        (retried_decision.id, "otel-review-2"): ("reviewed", "approve"),
    }
    assert {r["reference"] for r in everything if r["decision_id"] == retried_decision.id} == {
        f"flow-run/{retried_run}/otel-review-1", f"flow-run/{retried_run}/otel-review-2"}
    answered = [r for r in everything if r["status"] == "reviewed" and r["decision_id"] != retried_decision.id]
    assert all(r["reference"] == f"flow-run/{answered_run}/otel-review-1" for r in answered)
    assert all(0 <= r["seconds_to_review"] < 30 for r in answered)
    # the earlier review of `before` is not the answer: the answer is the one after the request
    (late,) = [r for r in answered if r["decision_id"] == before.id]
    assert late["reviewed_at"] > late["requested_at"]
    only_expired = run_query(client, "review_response_times", {"flow_run_id": expired_run}).as_dicts()
    assert [(r["decision_id"], r["status"], r["seconds_to_review"]) for r in only_expired] == [(expired.id, "expired", None)]
    assert [r["decision_id"] for r in run_query(client, "review_response_times", {"status": "waiting"}).as_dicts()] == [waiting.id]
    client.close()
