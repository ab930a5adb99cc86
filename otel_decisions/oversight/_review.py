"""``request_review``: a human review of an AI decision, asked for and answered in the Prefect UI.

Inside a flow, ``request_review(decision)`` pauses the flow run (``suspend=True``: suspends it, so the
process exits and the run resumes later on a worker) with a typed form whose description shows the
decision as stored. The reviewer's answer becomes a ``decision.review`` record linked to the decision
(the same record :func:`otel_decisions.record_review` makes, reviewer pseudonymised, at the time the
form was submitted), and the flow continues with the reviewed outcome.

What is recorded, besides the review:

- a ``review_requested`` event per decision when the form first opens (its deadline in
  ``effective_at``): with the review it gives the time the reviewer took (``review_response_times``);
- a ``review_expired`` event when a paused run's deadline passes unanswered, then
  :class:`~otel_decisions.errors.ReviewTimeout` is raised (the run is running again: catch it to
  escalate). No review is never an approval. A suspended run's deadline is kept by Prefect's server;
  the request event's deadline shows it expired.

A resumed (suspended) run executes the flow from the start: the form's key (``otel-review-<n>``, the
n-th request in the run) finds the recorded answer and returns it, recorded once. Once recorded, the
reviewer's answer as submitted (their user id in clear) is deleted from Prefect; the review record keeps
it pseudonymised. If the decisions asked about differ from the ones the reviewer saw (a scoring task ran
again and made new decisions), the answer is recorded for the decisions the reviewer saw and
:class:`~otel_decisions.errors.ReviewError` says how to make the decisions stable (return the decision's
id from a task with ``persist_result=True``, or give decisions a deterministic id). A flow run retried
after an unanswered form asks again with a new form.

Example::

    from otel_decisions import request_review

    @flow
    def underwrite(application):
        decision_id = score(application)             # a task returning the recorded decision's id
        review = request_review(decision_id, timeout=3600)
        return review.outcome                        # the reviewer's outcome (an override's new one)
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry.trace import SpanContext, TraceFlags

from otel_decisions import _runtime, semconv
from otel_decisions.capture import (
    Decision,
    decision_card,
    record_review_expiry,
    record_review_request,
    registry,
    review_record,
)
from otel_decisions.errors import DecisionValidationError, OtelDecisionsError, ReviewError, ReviewTimeout
from otel_decisions.oversight._forms import Answer, Card, answers, description, review_form

__all__ = ["ReviewResult", "arequest_review", "arequest_reviews", "request_review", "request_reviews"]

logger = logging.getLogger("otel_decisions")
_SYNC: dict[str, Any] = {"_sync": True}  # Prefect's async_dispatch: the sync variant even in an async flow

DEFAULT_TIMEOUT_S = 86_400
"""A review form stays open one day unless ``timeout`` says otherwise."""
MAX_BATCH = 25
"""Decisions per form; a longer queue is asked in several forms, one after the other."""
_REQUESTER = "otel-decisions.request_review"
_CHANNEL = "prefect-ui"
_COUNTER = "otel-review"  # our key in Prefect's FlowRunContext.observed_flow_pauses


@dataclass(frozen=True)
class ReviewResult:
    """The reviewer's answer for one decision, as the flow continues with it."""

    decision_id: str
    action: str
    """approve / override / escalate / reject."""
    outcome: str | None
    """The outcome that stands after the review: the decision's own (approve), the new one (override); None when
    none stands yet (escalate: a senior reviewer decides; reject: the decision must be made again)."""
    original_outcome: str | None
    reason: str
    """The reviewer's reason as recorded (scrubbed of identifiers)."""
    review_id: str
    waited_seconds: float | None
    """From the form opening to the reviewer's submission."""

    @property
    def overridden(self) -> bool:
        return self.action == semconv.ReviewAction.OVERRIDE.value


def request_review(
    decision: Decision | str,
    /,
    *,
    timeout: int = DEFAULT_TIMEOUT_S,
    suspend: bool = False,
    poll_interval: float = 5,
) -> ReviewResult:
    """Ask a human to review *decision* (a recorded :class:`Decision` or its id) in the Prefect UI and wait.

    Pauses the flow run with a review form (``suspend=True``: suspends it; the run must come from a
    deployment, and the tasks before it should persist their results so they are not run again), records
    the answer as a ``decision.review`` linked to the decision and returns it. *timeout* seconds without
    an answer: the expiry is recorded and :class:`~otel_decisions.errors.ReviewTimeout` raised.
    Call it in the flow's body (not a task). In an async flow, ``await arequest_review(...)``.
    """
    return request_reviews([decision], timeout=timeout, suspend=suspend, poll_interval=poll_interval)[0]


def request_reviews(
    decisions: Sequence[Decision | str],
    /,
    *,
    timeout: int = DEFAULT_TIMEOUT_S,
    suspend: bool = False,
    poll_interval: float = 5,
) -> list[ReviewResult]:
    """Ask for the review of a queue of decisions in one form (up to 25 per form; a longer queue gets
    several forms in turn): one block of answers per decision and one reviewer. Returns the results in
    the queue's order. Otherwise as :func:`request_review`."""
    _check_not_async_flow("request_reviews")
    items = _check(decisions, timeout, poll_interval)
    results: list[ReviewResult] = []
    for start in range(0, len(items), MAX_BATCH):
        results += _run_sync(
            _ask(items[start : start + MAX_BATCH], timeout=timeout, suspend=suspend, poll=poll_interval)
        )
    return results


async def arequest_review(
    decision: Decision | str,
    /,
    *,
    timeout: int = DEFAULT_TIMEOUT_S,
    suspend: bool = False,
    poll_interval: float = 5,
) -> ReviewResult:
    """:func:`request_review` for async flows: Prefect's async pause is awaited, so the event loop runs on while
    the reviewer answers (recording the request and the review takes the loop for a moment)."""
    return (await arequest_reviews([decision], timeout=timeout, suspend=suspend, poll_interval=poll_interval))[0]


async def arequest_reviews(
    decisions: Sequence[Decision | str],
    /,
    *,
    timeout: int = DEFAULT_TIMEOUT_S,
    suspend: bool = False,
    poll_interval: float = 5,
) -> list[ReviewResult]:
    """:func:`request_reviews` for async flows."""
    items = _check(decisions, timeout, poll_interval)
    results: list[ReviewResult] = []
    for start in range(0, len(items), MAX_BATCH):
        step = _ask(items[start : start + MAX_BATCH], timeout=timeout, suspend=suspend, poll=poll_interval)
        results += await _run_async(step)
    return results


# --- Prefect calls: the review's steps yield them, a sync or an async driver makes them ---------------
@dataclass(frozen=True)
class _Call:
    """One Prefect API call a review step needs: *name* of the ``prefect.input.actions`` /
    ``prefect.flow_runs`` function (its async variant is ``a`` + name), and its arguments."""

    name: str
    kwargs: dict[str, Any]


_Steps = Generator[_Call, Any, list[ReviewResult]]


def _resume_after_timeout(flow_run_id: Any, _sync: bool = True) -> None:
    """Set the run running again after Prefect's pause timed out, as Prefect's own resume does: marked
    ``resuming`` first, so the run count (and with it the flow's retries) is not spent."""
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run_id)
        client.update_flow_run(flow_run_id, empirical_policy=run.empirical_policy.model_copy(update={"resuming": True}))
        client.set_flow_run_state(flow_run_id, Running(), force=True)


async def _aresume_after_timeout(flow_run_id: Any) -> None:
    from prefect.client.orchestration import get_client
    from prefect.states import Running

    async with get_client() as client:
        run = await client.read_flow_run(flow_run_id)
        policy = run.empirical_policy.model_copy(update={"resuming": True})
        await client.update_flow_run(flow_run_id, empirical_policy=policy)
        await client.set_flow_run_state(flow_run_id, Running(), force=True)


def _function(name: str, asynchronous: bool) -> Any:
    from prefect import flow_runs
    from prefect.input import actions

    if name == "resume_after_timeout":
        return _aresume_after_timeout if asynchronous else _resume_after_timeout
    module = flow_runs if name.endswith("flow_run") else actions
    return getattr(module, ("a" + name) if asynchronous else name)


def _run_sync(steps: _Steps) -> list[ReviewResult]:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            call = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as done:
            return list(done.value)
        value, error = None, None
        try:
            value = _function(call.name, False)(**call.kwargs, **_SYNC)
        except Exception as exc:  # noqa: BLE001 - handed to the step (a pause timing out), which re-raises the rest
            error = exc


async def _run_async(steps: _Steps) -> list[ReviewResult]:
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            call = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as done:
            return list(done.value)
        value, error = None, None
        try:
            value = await _function(call.name, True)(**call.kwargs)
        except Exception as exc:  # noqa: BLE001
            error = exc


# --- the steps ------------------------------------------------------------------------------------
def _check_not_async_flow(name: str) -> None:
    """A sync call from an async flow would block its event loop (and Prefect's sync pause cannot save its
    form there): point at the async variant."""
    from prefect.context import FlowRunContext

    context = FlowRunContext.get()
    flow = getattr(context, "flow", None)
    if getattr(flow, "isasync", False):
        raise OtelDecisionsError(
            f"{name}() waits for a human and would block this async flow's event loop: use `await a{name}(...)`"
        )


def _check(decisions: Sequence[Decision | str], timeout: Any, poll: Any) -> list[Decision | str]:
    if isinstance(decisions, (str, Decision)) or not isinstance(decisions, Sequence):
        raise DecisionValidationError("decisions", "pass a list of decisions (or use request_review for one)")
    items: list[Decision | str] = []
    for item in decisions:
        if isinstance(item, Decision):
            items.append(item)
            continue
        try:
            items.append(str(uuid.UUID(str(item))))  # one spelling: lower case, dashes
        except ValueError:
            raise DecisionValidationError(
                "decision",
                f"{item!r} is not a decision or decision id (UUID); pass the Decision record_decision returned",
            ) from None
    if not items:
        raise DecisionValidationError("decisions", "is empty: pass the decisions to review")
    ids = [_id(item) for item in items]
    if len(set(ids)) != len(ids):
        raise DecisionValidationError("decisions", "names a decision twice: ask for each decision's review once")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise DecisionValidationError("timeout", f"expected a positive number of seconds, got {timeout!r}")
    if not isinstance(poll, (int, float)) or isinstance(poll, bool) or poll <= 0:
        raise DecisionValidationError("poll_interval", f"expected a positive number of seconds, got {poll!r}")
    return items


def _id(item: Decision | str) -> str:
    return item.id if isinstance(item, Decision) else item


def _context(suspend: bool) -> Any:
    from prefect.context import FlowRunContext, TaskRunContext

    if TaskRunContext.get() is not None:
        raise OtelDecisionsError(
            "request_review() is called in a task: call it in the flow's body (a flow run "
            "pauses, a task run cannot), passing the Decision the task returned"
        )
    context = FlowRunContext.get()
    if context is None or context.flow_run is None:
        raise OtelDecisionsError(
            "request_review() pauses a Prefect flow run and is called outside one: call it in "
            "a @flow, or record a review made elsewhere with record_review()"
        )
    if suspend and context.flow_run.deployment_id is None:
        raise OtelDecisionsError(
            "request_review(suspend=True) needs a flow run of a deployment (a worker resumes it after the answer): "
            "run the flow from a deployment, or leave suspend off to pause in this process"
        )
    if suspend and context.flow_run.parent_task_run_id is not None:
        raise OtelDecisionsError(
            "request_review(suspend=True) is called in a subflow, which Prefect cannot suspend: call it in the "
            "parent flow, or leave suspend off to pause"
        )
    return context


def _next_key(context: Any) -> str:
    """``otel-review-<n>``: the n-th review form of this flow run (the same on a resumed run's re-execution)."""
    seen = context.observed_flow_pauses
    seen[_COUNTER] = seen.get(_COUNTER, 0) + 1
    return f"{_COUNTER}-{seen[_COUNTER]}"


def _review_id(flow_run_id: str, key: str, decision_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"otel-decisions:review:{flow_run_id}:{key}:{decision_id}"))


@dataclass
class _Form:
    key: str
    flow_run_id: Any
    ids: list[str]
    requested_at: datetime
    due_at: datetime
    spans: dict[str, list[str]]
    """decision id -> [trace id, span id] of its record, for the review's link on a resumed run."""

    @property
    def reference(self) -> str:
        return f"flow-run/{self.flow_run_id}/{self.key}"

    def link(self, decision_id: str) -> SpanContext | None:
        ids = self.spans.get(decision_id)
        if not ids:
            return None
        return SpanContext(int(ids[0], 16), int(ids[1], 16), is_remote=True, trace_flags=TraceFlags(TraceFlags.SAMPLED))


def _ask(items: list[Decision | str], *, timeout: int, suspend: bool, poll: float) -> _Steps:
    """The review of *items* in one form, as a sequence of Prefect calls (see the drivers above).

    Flow-run inputs kept per form (key ``otel-review-<n>``): ``<key>-decisions`` (what was asked, when, the
    deadline, the records' span ids) and, once the answer is recorded, ``<key>-recorded`` (each review as
    recorded: pseudonymised, scrubbed), after which Prefect's copy of the answer as typed is deleted."""
    context = _context(suspend)
    flow_run_id = context.flow_run.id
    prefix = "suspended" if suspend else "paused"
    ids = [_id(item) for item in items]
    note: str | None = None  # why the previous answer could not be recorded: asked again, same request
    while True:
        key = _next_key(context)
        asked = yield _Call("read_flow_run_input", {"key": f"{key}-decisions", "flow_run_id": flow_run_id})
        recorded = yield _Call("read_flow_run_input", {"key": f"{key}-recorded", "flow_run_id": flow_run_id})
        if asked is not None:
            _list_earlier(asked, flow_run_id)
        if asked is not None and recorded is not None:  # a resumed run: the answer is on record
            form = _form_of(key, flow_run_id, asked)
            results = [_result_of(entry, form) for entry in recorded["reviews"]]
            if form.ids != ids:
                raise ReviewError(_changed_message(form.ids, ids) + _RECORDED_FOR_SHOWN, tuple(ids))
            return results
        response_key = {"key_prefix": f"{prefix}-{key}-response", "limit": 1, "flow_run_id": flow_run_id}
        answered = (yield _Call("filter_flow_run_input", response_key)) if asked is not None else []
        if asked is not None and not answered:
            continue  # asked before and never answered (a retried flow run): a new form
        if asked is None:
            cards = [_card(item) for item in items]
            unreadable = [card.decision_id for card in cards if not card.attributes]
            if unreadable:
                raise ReviewError(
                    f"decision(s) {', '.join(unreadable)} cannot be shown to a reviewer: this process neither recorded "
                    "them nor can read them from the store. Pass the Decision that record_decision returned, or ask "
                    "for the review where the store is readable (exporters include clickhouse)",
                    tuple(unreadable),
                )
            now = datetime.now(UTC)
            spans = {card.decision_id: list(card.span) for card in cards if card.span}
            form = _Form(key, flow_run_id, ids, now, now + timedelta(seconds=timeout), spans)
            value: dict[str, Any] = {
                "decision_ids": ids,
                "requested_at": now.isoformat(),
                "due_at": form.due_at.isoformat(),
                "spans": spans,
                # as stored (masked stays masked), without the inputs: a resumed run lists them in its artifact
                "cards": {card.decision_id: _kept(card) for card in cards},
            }
            yield _Call(
                "create_flow_run_input", {"key": f"{key}-decisions", "value": value, "flow_run_id": flow_run_id}
            )
            if note is None:  # a new request (asking again after a bad answer is the same request)
                for item in items:
                    record_review_request(
                        item,
                        requested_by=_REQUESTER,
                        due_at=form.due_at,
                        reference=form.reference,
                        channel=_CHANNEL,
                        reason=f"review form {key} in the Prefect UI",
                    )
        else:  # answered before this pass: the answer is about the decisions as the reviewer saw them
            form = _form_of(key, flow_run_id, asked)
            shown = asked.get("cards") or {}
            cards = [Card(decision_id, shown.get(decision_id) or {}) for decision_id in form.ids]
        response = yield from _wait(
            cards, form, prefix, suspend=suspend, poll=poll, timeout=timeout, note=note, stored=bool(answered)
        )
        submitted = yield _Call("filter_flow_run_input", response_key)
        submitted_at = _as_utc(submitted[0].created) if submitted and submitted[0].created else datetime.now(UTC)
        given, reviewer, problems = answers(cards, response)
        if problems:
            note = "The previous answer was not recorded: " + " ".join(problems)
            logger.warning("otel-decisions: review form %s of flow run %s: %s; asking again", key, flow_run_id, note)
            yield _Call("delete_flow_run_input", {"key": f"{prefix}-{key}-response", "flow_run_id": flow_run_id})
            if form.ids != ids:
                raise ReviewError(_changed_message(form.ids, ids), tuple(ids))
            continue
        entries = [
            _record(form, card, answer, reviewer, submitted_at, item if form.ids == ids else card.decision_id)
            for item, card, answer in zip(items if form.ids == ids else form.ids, cards, given, strict=True)
        ]
        yield _Call(
            "create_flow_run_input",
            {"key": f"{key}-recorded", "value": {"reviews": entries}, "flow_run_id": flow_run_id},
        )
        # the answer as typed (the reviewer's id in clear) is Prefect's to keep no longer: the record has it
        yield _Call("delete_flow_run_input", {"key": f"{prefix}-{key}-response", "flow_run_id": flow_run_id})
        results = [_result_of(entry, form) for entry in entries]
        if form.ids != ids:
            raise ReviewError(_changed_message(form.ids, ids) + _RECORDED_FOR_SHOWN, tuple(ids))
        return results


def _kept(card: Card) -> dict[str, Any]:
    return {k: v for k, v in card.attributes.items() if k != semconv.DECISION_INPUTS}


def _list_earlier(asked: dict[str, Any], flow_run_id: Any) -> None:
    """A resumed run: the decisions of a form asked before it suspended are listed in its artifact."""
    form = _form_of("", flow_run_id, asked)
    for decision_id, kept in (asked.get("cards") or {}).items():
        ts = int(form.requested_at.timestamp() * 1e9)
        registry.add_earlier(decision_id, form.link(decision_id), ts, kept, str(flow_run_id))


_RECORDED_FOR_SHOWN = " The answer the reviewer gave was recorded for the decisions shown."


def _form_of(key: str, flow_run_id: Any, asked: dict[str, Any]) -> _Form:
    return _Form(
        key,
        flow_run_id,
        list(asked["decision_ids"]),
        datetime.fromisoformat(asked["requested_at"]),
        datetime.fromisoformat(asked["due_at"]),
        dict(asked.get("spans") or {}),
    )


def _changed_message(shown: list[str], now: list[str]) -> str:
    return (
        f"the decisions asked about ({', '.join(now)}) are not the ones the reviewer was shown "
        f"({', '.join(shown)}): the resumed flow run made its decisions again. Make them stable across a resume: "
        "return the recorded decision's id from the scoring task with @task(persist_result=True) (only the id is "
        "then kept in Prefect's result storage), or give each decision a deterministic id "
        "(record_decision(id=uuid5(...)))"
    )


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _card(item: Decision | str) -> Card:
    """The decision as stored: this process's record of it (completed from the Decision through the masking
    path), or the store's row when this process writes to the store directly."""
    decision_id = _id(item)
    span: tuple[str, str] | None = None
    if isinstance(item, Decision) and item.trace_id and item.span_id:
        span = (item.trace_id, item.span_id)
    known = registry.lookup(decision_id)
    if span is None and known is not None:
        span = (format(known[0].trace_id, "032x"), format(known[0].span_id, "016x"))
    card = decision_card(item)
    if card is None:
        stored = _stored_card(decision_id)
        if stored is not None:
            card, span = stored
    return Card(decision_id, card or {}, span)


_STORED_COLUMNS = {
    semconv.DECISION_TYPE: "decision_type",
    semconv.DECISION_OUTCOME: "outcome",
    semconv.DECISION_OPTIONS: "options",
    semconv.DECISION_CONFIDENCE: "confidence",
    semconv.DECISION_SCORE: "score",
    semconv.DECISION_THRESHOLD: "threshold",
    semconv.DECISION_RATIONALE: "rationale",
    semconv.DECISION_REASONS: "reasons",
    semconv.DECISION_INPUTS: "inputs",
    semconv.DECISION_MODEL_NAME: "model_name",
    semconv.DECISION_MODEL_VERSION: "model_version",
    semconv.DECISION_POLICY_VERSION: "policy_version",
    semconv.DECISION_AUTOMATION: "automation",
}


def _stored_card(decision_id: str) -> tuple[dict[str, Any], tuple[str, str]] | None:
    """The decision's typed row and span ids, when this process writes to the store itself (else None)."""
    runtime = _runtime.get_runtime()
    if "clickhouse" not in runtime.settings.exporters:
        return None
    try:
        from otel_decisions.store.client import get_client

        client = get_client(runtime.settings.resolved_dsn, role="reader")
        try:
            rows = client.query(
                f"SELECT {', '.join(_STORED_COLUMNS.values())}, trace_id, span_id FROM decisions FINAL "
                "WHERE decision_id = {id:String}",
                parameters={"id": decision_id},
            ).result_rows
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - said; the caller refuses to show an empty form
        logger.warning("otel-decisions: could not read decision %s for its review form: %s", decision_id, exc)
        return None
    if not rows:
        return None
    *values, trace_id, span_id = rows[0]
    return dict(zip(_STORED_COLUMNS, values, strict=True)), (str(trace_id), str(span_id))


def _wait(
    cards: list[Card],
    form: _Form,
    prefix: str,
    *,
    suspend: bool,
    poll: float,
    timeout: int,
    note: str | None,
    stored: bool,
) -> Generator[_Call, Any, Any]:
    """Pause or suspend with the form until the reviewer answers (a stored answer returns at once)."""
    from prefect.exceptions import FlowPauseTimeout

    text = "" if stored else description(cards, due_at=form.due_at, note=note)
    form_class = review_form(cards)
    run_input = form_class.with_initial_data(description=text) if text else form_class
    remaining = max(1, int((form.due_at - datetime.now(UTC)).total_seconds()))
    if suspend:
        return (yield _Call("suspend_flow_run", {"wait_for_input": run_input, "timeout": remaining, "key": form.key}))
    try:
        return (
            yield _Call(
                "pause_flow_run",
                {"wait_for_input": run_input, "timeout": remaining, "poll_interval": poll, "key": form.key},
            )
        )
    except FlowPauseTimeout:
        pass
    # an answer that came in just as Prefect gave up still counts
    late = yield _Call("read_flow_run_input", {"key": f"{prefix}-{form.key}-response", "flow_run_id": form.flow_run_id})
    if late is None:
        for card in cards:
            record_review_expiry(
                card.decision_id,
                requested_by=_REQUESTER,
                due_at=form.due_at,
                reference=form.reference,
                channel=_CHANNEL,
            )
    try:
        # Prefect leaves the run PAUSED after its pause times out (its server may fail it): set it running,
        # so the answer is recorded, or a caller that catches ReviewTimeout can go on.
        yield _Call("resume_after_timeout", {"flow_run_id": form.flow_run_id})
    except Exception as exc:  # noqa: BLE001 - the timeout is what the caller must hear about
        logger.warning(
            "otel-decisions: could not set flow run %s running after its review form timed out: %s",
            form.flow_run_id,
            exc,
        )
    if late is not None:
        return form_class.model_validate(late)
    raise ReviewTimeout(
        f"no reviewer answered review form {form.key} of flow run {form.flow_run_id} within {timeout} s; "
        "the expiry is recorded (review_expired) and the decisions stand unreviewed. Catch ReviewTimeout to "
        "escalate, or ask again with a longer timeout",
        tuple(card.decision_id for card in cards),
    )


def _record(
    form: _Form, card: Card, answer: Answer, reviewer: str, submitted_at: datetime, about: Decision | str
) -> dict[str, Any]:
    """Record one answer; returns what is kept of it in Prefect (the review as recorded)."""
    review_id = _review_id(str(form.flow_run_id), form.key, card.decision_id)
    attrs = review_record(
        about,
        reviewer=reviewer,
        action=answer.action,
        reason=answer.reason,
        new_outcome=answer.new_outcome,
        original_outcome=card.outcome,
        review_id=review_id,
        reviewed_at=submitted_at,
        link=form.link(card.decision_id),
    )
    return {
        "decision_id": card.decision_id,
        "review_id": review_id,
        "action": answer.action,
        "new_outcome": answer.new_outcome,
        "original_outcome": card.outcome,
        "reason": attrs.get(semconv.DECISION_REVIEW_REASON) or "",
        "reviewer_id": attrs.get(semconv.DECISION_REVIEW_REVIEWER_ID) or "",
        "submitted_at": submitted_at.isoformat(),
    }


def _result_of(entry: dict[str, Any], form: _Form) -> ReviewResult:
    action = str(entry["action"])
    outcome: str | None
    if action == semconv.ReviewAction.OVERRIDE.value:
        outcome = entry.get("new_outcome")
    elif action == semconv.ReviewAction.APPROVE.value:
        outcome = entry.get("original_outcome")
    else:
        outcome = None  # escalated or rejected: no outcome stands yet
    submitted = datetime.fromisoformat(entry["submitted_at"])
    waited = max(0.0, (submitted - form.requested_at).total_seconds())
    return ReviewResult(
        str(entry["decision_id"]),
        action,
        outcome,
        entry.get("original_outcome"),
        str(entry.get("reason") or ""),
        str(entry["review_id"]),
        waited,
    )
