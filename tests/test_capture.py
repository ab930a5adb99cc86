"""Decision capture on real Prefect flows: every task kind, auto and explicit capture, reviews, parentage."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import pydantic
import pytest
from prefect import flow, task
from prefect.settings import temporary_settings

import otel_decisions
from otel_decisions import semconv

pytestmark = pytest.mark.usefixtures("captured")


def finished(memory):
    otel_decisions.force_flush()
    return list(memory.get_finished_spans())


def decision_spans(memory):
    return [s for s in finished(memory) if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]


def by_id(spans):
    return {s.context.span_id: s for s in spans}


def task_span_of(spans, decision_span):
    parent = by_id(spans)[decision_span.parent.span_id]
    return parent


# --- task kinds ------------------------------------------------------------------------
@task
def score_sync(applicant: dict, threshold: float = 0.5) -> dict:
    return {"decision": "approve", "confidence": 0.83, "reasons": ["income", "history"], "threshold": threshold}


@task
async def score_async(applicant: dict) -> dict:
    await asyncio.sleep(0)
    return {"outcome": "deny", "probability": 0.61}


@task
def not_a_decision(x: int) -> dict:
    return {"total": x * 2}


def test_sync_task_auto_capture_attributes_and_parentage(captured):
    @flow
    def credit_flow():
        return score_sync({"income": 52000, "ssn": "078-05-1120"}, threshold=0.6)

    result = credit_flow()
    assert result == {"decision": "approve", "confidence": 0.83, "reasons": ["income", "history"], "threshold": 0.6}
    spans = finished(captured)
    (dec,) = [s for s in spans if s.name == "decision score_sync"]
    a = dec.attributes
    assert a[semconv.DECISION_OUTCOME] == "approve"
    assert a[semconv.DECISION_CONFIDENCE] == 0.83
    assert a[semconv.DECISION_THRESHOLD] == 0.6
    assert list(a[semconv.DECISION_REASONS]) == ["income", "history"]
    assert a[semconv.DECISION_SOURCE] == "auto"
    assert json.loads(a[semconv.DECISION_INPUTS]) == {"applicant": {"income": 52000, "ssn": semconv.REDACTION_SENTINEL}, "threshold": 0.6}
    assert list(a[semconv.DECISION_REDACTED]) == ["inputs.applicant.ssn"]
    assert len(a[semconv.DECISION_INPUTS_DIGEST]) == 64
    assert a[semconv.PREFECT_TASK_NAME] == "score_sync"
    assert a[semconv.PREFECT_FLOW_NAME] == "credit-flow"
    # parent chain: decision -> Prefect task-run span -> Prefect flow-run span
    task_span = task_span_of(spans, dec)
    assert task_span.attributes["prefect.run.type"] == "task"
    assert task_span.attributes["prefect.run.id"] == a[semconv.PREFECT_TASK_RUN_ID]
    flow_span = by_id(spans)[task_span.parent.span_id]
    assert flow_span.attributes["prefect.run.type"] == "flow"
    assert flow_span.attributes["prefect.run.id"] == a[semconv.PREFECT_FLOW_RUN_ID]
    # the count is stamped where the decision was recorded: the task-run span; the flow's adds up to it
    assert task_span.attributes[semconv.DECISION_FLOW_CAPTURED] == 1
    assert task_span.attributes[semconv.PREFECT_FLOW_RUN_ID] == a[semconv.PREFECT_FLOW_RUN_ID]
    assert flow_span.attributes[semconv.DECISION_FLOW_CAPTURED] == 0
    assert dec.context.trace_id == task_span.context.trace_id == flow_span.context.trace_id


def test_async_submit_and_map(captured):
    @flow
    async def async_flow():
        return await score_async({"income": 1})

    @flow
    def fan_out():
        fut = score_sync.submit({"income": 2})
        mapped = score_sync.map([{"income": 3}, {"income": 4}, {"income": 5}])
        return [fut.result(), *[m.result() for m in mapped]]

    assert asyncio.run(async_flow()) == {"outcome": "deny", "probability": 0.61}
    assert len(fan_out()) == 4
    decisions = decision_spans(captured)
    async_dec = [d for d in decisions if d.name == "decision score_async"]
    assert len(async_dec) == 1 and async_dec[0].attributes[semconv.DECISION_CONFIDENCE] == 0.61
    sync_dec = [d for d in decisions if d.name == "decision score_sync"]
    incomes = sorted(json.loads(d.attributes[semconv.DECISION_INPUTS])["applicant"]["income"] for d in sync_dec)
    assert incomes == [2, 3, 4, 5]
    spans = finished(captured)
    for dec in decisions:
        parent = task_span_of(spans, dec)
        assert parent.attributes["prefect.run.id"] == dec.attributes[semconv.PREFECT_TASK_RUN_ID]


def test_retries_failure_and_nested_flows(captured):
    attempts = {"n": 0}

    @task(retries=2, retry_delay_seconds=0)
    def flaky(x: int) -> dict:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise RuntimeError(f"transient {attempts['n']}")
        return {"label": "fraud", "score": 0.97}

    class Boom(Exception):
        pass

    @task
    def failing(x: int) -> dict:
        raise Boom("model server down")

    @flow
    def child(x: int):
        return flaky(x)

    @flow
    def parent():
        out = child(7)
        state = failing(1, return_state=True)
        return out, state

    out, state = parent()
    assert out == {"label": "fraud", "score": 0.97}
    assert state.is_failed()
    with pytest.raises(Boom, match="model server down"):
        state.result()
    decisions = decision_spans(captured)
    (dec,) = [d for d in decisions if d.name == "decision flaky"]
    assert attempts["n"] == 3
    assert dec.attributes[semconv.DECISION_OUTCOME] == "fraud"
    assert dec.attributes[semconv.DECISION_CONFIDENCE] == 0.97
    assert not [d for d in decisions if d.name == "decision failing"]
    spans = finished(captured)
    task_span = task_span_of(spans, dec)
    child_flow = by_id(spans)[task_span.parent.span_id]
    assert child_flow.attributes["prefect.run.type"] == "flow"
    counted = sum(s.attributes.get(semconv.DECISION_FLOW_CAPTURED, 0) for s in (task_span, child_flow))
    assert counted == 1  # once, on the task that recorded it (a failed attempt's decision was never recorded)
    assert dec.attributes[semconv.PREFECT_FLOW_NAME] == "child"


def test_non_decision_return_yields_no_decision(captured):
    @flow
    def plain():
        return not_a_decision(21)

    assert plain() == {"total": 42}
    assert decision_spans(captured) == []


# --- shapes ------------------------------------------------------------------------------------
class Verdict(pydantic.BaseModel):
    prediction: str
    probability: float
    explanation: str


@dataclasses.dataclass
class Triage:
    label: str
    confidence: float
    model_version: str


@task
def pydantic_task(x: int) -> Verdict:
    return Verdict(prediction="refer", probability=0.4, explanation="uncertain margin")


@task
def dataclass_task(x: int) -> Triage:
    return Triage(label="urgent", confidence=0.9, model_version="2.1")


def test_pydantic_and_dataclass_returns(captured):
    @flow
    def shapes():
        return pydantic_task(1), dataclass_task(2)

    verdict, triage = shapes()
    assert isinstance(verdict, Verdict) and verdict.prediction == "refer"
    assert triage == Triage(label="urgent", confidence=0.9, model_version="2.1")
    decisions = {d.name: d for d in decision_spans(captured)}
    p = decisions["decision pydantic_task"].attributes
    assert (p[semconv.DECISION_OUTCOME], p[semconv.DECISION_CONFIDENCE], p[semconv.DECISION_RATIONALE]) == ("refer", 0.4, "uncertain margin")
    d = decisions["decision dataclass_task"].attributes
    assert (d[semconv.DECISION_OUTCOME], d[semconv.DECISION_CONFIDENCE], d[semconv.DECISION_MODEL_VERSION]) == ("urgent", 0.9, "2.1")


def test_configurable_field_mapping(captured, tmp_path):
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    otel_decisions.configure(exporters=["none"], span_exporters=[memory], durable=False, data_dir=str(tmp_path),
                             hmac_key="k" * 32, outcome_fields=["verdict_code"], confidence_fields=["certainty_pct01"])

    @task
    def custom() -> dict:
        return {"verdict_code": "B2", "certainty_pct01": 0.7}

    @task
    def default_shape() -> dict:
        return {"decision": "approve", "confidence": 0.9}

    @flow
    def mapped():
        return custom(), default_shape()

    mapped()
    decisions = decision_spans(memory)
    assert [(d.attributes[semconv.DECISION_OUTCOME], d.attributes[semconv.DECISION_CONFIDENCE]) for d in decisions] == [("B2", 0.7)]


# --- explicit API --------------------------------------------------------------------------------
@task
def batch_score(applicants: list[dict]) -> list[str]:
    ids = []
    for applicant in applicants:
        d = otel_decisions.record_decision(
            type="credit.approval",
            outcome="approve" if applicant["income"] > 40000 else "deny",
            confidence=0.8,
            inputs=applicant,
            subject_id=applicant["applicant_id"],
            reasons=["income"],
            model_name="credit-gbm",
            model_version="3.2.0",
            regulations=["ECOA-RegB", "FINRA-4511"],
            review_required=applicant["income"] < 45000,
        )
        ids.append(d.id)
    return ids


def test_explicit_several_decisions_in_one_task_and_no_double_auto(captured):
    applicants = [{"applicant_id": f"A-{i}", "income": 30000 + 10000 * i} for i in range(3)]

    @flow
    def batch():
        return batch_score(applicants)

    ids = batch()
    decisions = decision_spans(captured)
    assert sorted(d.attributes[semconv.DECISION_ID] for d in decisions) == sorted(ids)
    assert {d.attributes[semconv.DECISION_SOURCE] for d in decisions} == {"explicit"}
    outcomes = [d.attributes[semconv.DECISION_OUTCOME] for d in sorted(decisions, key=lambda d: d.attributes[semconv.DECISION_INTEGRITY_SEQ])]
    assert outcomes == ["deny", "deny", "approve"]
    first = decisions[0].attributes
    assert first[semconv.DECISION_SUBJECT_ID] != "A-0" and len(first[semconv.DECISION_SUBJECT_ID]) == 64
    assert first[semconv.GEN_AI_REQUEST_MODEL] == "credit-gbm"
    assert list(first[semconv.DECISION_REGULATIONS]) == ["ECOA-RegB", "FINRA-4511"]
    # the integrity chain links consecutive records
    chain = sorted(decisions, key=lambda d: d.attributes[semconv.DECISION_INTEGRITY_SEQ])
    for before, after in zip(chain, chain[1:]):
        assert after.attributes[semconv.DECISION_INTEGRITY_PREV_HASH] == before.attributes[semconv.DECISION_INTEGRITY_HASH]


@otel_decisions.decision(type="clinical.triage", model_name="triage-lr", model_version="1.0")
def classify(features: dict, patient_ref: str) -> dict:
    return {"outcome": "refer", "confidence": 0.55, "rationale": f"borderline for {patient_ref}"}


@otel_decisions.decision(type="routing")
async def route(priority: int) -> str:
    return "fast-track" if priority > 5 else "standard"


def test_decorator_sync_and_async(captured):
    @task
    def triage_task() -> str:
        return classify({"radius": 14.2}, patient_ref="P-99812")["outcome"]

    @task
    async def route_task() -> str:
        return await route(7)

    @flow
    async def clinic():
        return triage_task(), await route_task()

    assert asyncio.run(clinic()) == ("refer", "fast-track")
    decisions = {d.name: d.attributes for d in decision_spans(captured)}
    t = decisions["decision clinical.triage"]
    assert t[semconv.DECISION_SOURCE] == "decorator"
    assert t[semconv.DECISION_MODEL_NAME] == "triage-lr"
    assert json.loads(t[semconv.DECISION_INPUTS]) == {"features": {"radius": 14.2}, "patient_ref": "P-99812"}
    r = decisions["decision routing"]
    assert r[semconv.DECISION_OUTCOME] == "fast-track" and json.loads(r[semconv.DECISION_INPUTS]) == {"priority": 7}
    # the triage task returns a str: no extra auto-captured decision for it
    assert "decision triage_task" not in decisions


def test_review_in_a_second_flow_run_links_to_decision(captured):
    @task
    def decide() -> otel_decisions.Decision:
        return otel_decisions.record_decision(type="credit.approval", outcome="deny", confidence=0.52, inputs={"income": 39000})

    @flow
    def decide_flow() -> otel_decisions.Decision:
        return decide()

    @flow
    def review_flow(d: otel_decisions.Decision) -> str:
        return otel_decisions.record_review(d, reviewer="analyst-7", action="override", new_outcome="approve",
                                            reason="verified second income")

    d = decide_flow()
    review_id = review_flow(d)
    spans = finished(captured)
    (dec,) = [s for s in spans if s.name == "decision credit.approval"]
    (rev,) = [s for s in spans if s.name == semconv.REVIEW_SPAN_NAME]
    a = rev.attributes
    assert a[semconv.DECISION_ID] == d.id == dec.attributes[semconv.DECISION_ID]
    assert a[semconv.DECISION_REVIEW_ID] == review_id
    assert a[semconv.DECISION_REVIEW_ACTION] == "override"
    assert a[semconv.DECISION_REVIEW_ORIGINAL_OUTCOME] == "deny"
    assert a[semconv.DECISION_REVIEW_NEW_OUTCOME] == "approve"
    assert a[semconv.DECISION_REVIEW_REVIEWER_ID] != "analyst-7" and len(a[semconv.DECISION_REVIEW_REVIEWER_ID]) == 64
    assert a[semconv.PREFECT_FLOW_RUN_ID] != dec.attributes[semconv.PREFECT_FLOW_RUN_ID]
    assert a[semconv.DECISION_REVIEW_DECIDED_AT] == d.timestamp_ns
    (link,) = rev.links
    assert link.context.span_id == dec.context.span_id and link.context.trace_id == dec.context.trace_id
    # the review is recorded only once, and not as a decision
    assert len([s for s in spans if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]) == 1


def test_review_by_id_only_and_bad_review_input(captured):
    d = otel_decisions.record_decision(type="t", outcome="approve", confidence=0.9)
    otel_decisions.record_review(d.id, reviewer="r1", action="approve")
    (rev,) = [s for s in finished(captured) if s.name == semconv.REVIEW_SPAN_NAME]
    assert rev.links and rev.links[0].context.span_id == int(d.span_id, 16)
    with pytest.raises(ValueError, match="^action:"):
        otel_decisions.record_review(d, reviewer="r1", action="rubber-stamp")
    with pytest.raises(ValueError, match="^new_outcome:"):
        otel_decisions.record_review(d, reviewer="r1", action="override")
    with pytest.raises(ValueError, match="^reviewer:"):
        otel_decisions.record_review(d, reviewer=" ", action="approve")


# --- Prefect telemetry on and off ------------------------------------------------------------------
def test_prefect_telemetry_off_instrumentor_makes_flow_and_task_spans(captured):
    @flow
    def off_flow():
        a = score_sync({"income": 9})
        b = score_sync.submit({"income": 10}).result()
        return a, b

    with temporary_settings(updates={"cloud.enable_orchestration_telemetry": False}):
        off_flow()
    spans = finished(captured)
    flows = [s for s in spans if s.attributes.get("prefect.run.type") == "flow"]
    tasks = [s for s in spans if s.attributes.get("prefect.run.type") == "task"]
    decisions = [s for s in spans if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]
    assert len(flows) == 1 and len(tasks) == 2 and len(decisions) == 2  # never both Prefect's and ours
    assert {s.instrumentation_scope.name for s in flows + tasks} == {semconv.INSTRUMENTATION_SCOPE}
    ids = by_id(spans)
    for dec in decisions:
        task_span = ids[dec.parent.span_id]
        assert task_span.attributes[semconv.PREFECT_TASK_RUN_ID] == dec.attributes[semconv.PREFECT_TASK_RUN_ID]
        assert ids[task_span.parent.span_id] is flows[0]
    assert flows[0].attributes[semconv.DECISION_FLOW_CAPTURED] == 2


def test_prefect_telemetry_on_uses_prefects_spans_only(captured):
    @flow
    def on_flow():
        return score_sync({"income": 11})

    on_flow()
    spans = finished(captured)
    run_spans = [s for s in spans if "prefect.run.type" in (s.attributes or {})]
    assert {s.instrumentation_scope.name for s in run_spans} == {"prefect"}
    assert len([s for s in run_spans if s.attributes["prefect.run.type"] == "task"]) == 1


# --- instrument / uninstrument ------------------------------------------------------------------
def test_uninstrument_restores_prefect_and_double_instrument_is_harmless(captured):
    import prefect.flow_engine as fe
    import prefect.task_engine as te
    from prefect.telemetry.run_telemetry import RunTelemetry

    instrumentor = otel_decisions.PrefectInstrumentor()
    instrumentor.instrument()  # second call: no double wrapping
    assert not hasattr(te.SyncTaskRunEngine.handle_success.__wrapped__, "__wrapped__")

    @flow
    def once():
        return score_sync({"income": 12})

    once()
    assert len(decision_spans(captured)) == 1
    captured.clear()

    instrumentor.uninstrument()
    try:
        for owner, name in [(te.SyncTaskRunEngine, "handle_success"), (te.AsyncTaskRunEngine, "handle_success"),
                            (te.SyncTaskRunEngine, "call_task_fn"), (te.AsyncTaskRunEngine, "call_task_fn"),
                            (fe.FlowRunEngine, "call_flow_fn"), (fe.AsyncFlowRunEngine, "call_flow_fn"),
                            (RunTelemetry, "end_span_on_success"), (RunTelemetry, "end_span_on_failure")]:
            assert not hasattr(getattr(owner, name), "__wrapped__"), f"{owner.__name__}.{name} still wrapped"
        once()
        assert decision_spans(captured) == []
    finally:
        instrumentor.instrument()


def test_entry_point_names_the_instrumentor():
    from importlib.metadata import entry_points

    (ep,) = [e for e in entry_points(group="opentelemetry_instrumentor") if e.name == "prefect"]
    assert ep.load() is otel_decisions.PrefectInstrumentor


def test_flow_end_records_a_signed_checkpoint_of_the_chain_head(captured):
    import hashlib
    import hmac

    from .conftest import TEST_HMAC_KEY

    @flow
    def checkpointed():
        return score_sync({"income": 13})

    checkpointed()
    spans = finished(captured)
    (dec,) = [s for s in spans if s.name == "decision score_sync"]
    (cp,) = [s for s in spans if s.name == semconv.CHECKPOINT_SPAN_NAME]
    a = cp.attributes
    assert a[semconv.DECISION_INTEGRITY_CHAIN] == dec.attributes[semconv.DECISION_INTEGRITY_CHAIN]
    assert a[semconv.DECISION_INTEGRITY_SEQ] == dec.attributes[semconv.DECISION_INTEGRITY_SEQ]
    assert a[semconv.DECISION_INTEGRITY_HASH] == dec.attributes[semconv.DECISION_INTEGRITY_HASH]
    material = f"{a[semconv.DECISION_INTEGRITY_CHAIN]}|{a[semconv.DECISION_INTEGRITY_SEQ]}|{a[semconv.DECISION_INTEGRITY_HASH]}"
    assert a[semconv.DECISION_INTEGRITY_SIGNATURE] == hmac.new(TEST_HMAC_KEY.encode(), material.encode(), hashlib.sha256).hexdigest()
    # no new decision since: the next flush adds no checkpoint
    otel_decisions.force_flush()
    assert len([s for s in captured.get_finished_spans() if s.name == semconv.CHECKPOINT_SPAN_NAME]) == 1
