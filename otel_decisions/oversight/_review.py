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
n-th request in the run) finds the stored answer and returns it, recorded once. If the decisions
asked about differ from the ones the reviewer saw (a scoring task ran again and made new decisions),
the answer is recorded for the decisions the reviewer saw and :class:`~otel_decisions.errors.ReviewError`
says how to make the decisions stable (``persist_result=True`` on the task, or a deterministic id).

Example::

    from otel_decisions import request_review

    @flow
    def underwrite(application):
        decided = score(application)                 # a task returning the recorded Decision
        review = request_review(decided, timeout=3600)
        return review.outcome                        # the reviewer's outcome (an override's new one)
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from otel_decisions import _runtime, semconv
from otel_decisions.capture import (
    Decision,
    decision_card,
    record_review,
    record_review_expiry,
    record_review_request,
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
    """The outcome after review: the decision's own (approve, escalate), the new one (override), None (reject:
    the decision must be made again)."""
    original_outcome: str | None
    reason: str
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
    _check_not_in_event_loop("request_reviews")
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
    """:func:`request_review` for async flows (the wait runs in a worker thread; the event loop stays free)."""
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


def _set_state(flow_run_id: Any, state: Any, force: bool, _sync: bool = True) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.set_flow_run_state(flow_run_id, state, force=force)


async def _aset_state(flow_run_id: Any, state: Any, force: bool) -> None:
    from prefect.client.orchestration import get_client

    async with get_client() as client:
        await client.set_flow_run_state(flow_run_id, state, force=force)


def _function(name: str, asynchronous: bool) -> Any:
    from prefect import flow_runs
    from prefect.input import actions

    if name == "set_flow_run_state":
        return _aset_state if asynchronous else _set_state
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
def _check_not_in_event_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise OtelDecisionsError(
        f"{name}() waits for a human and would block this event loop: in an async flow use `await a{name}(...)`"
    )


def _check(decisions: Sequence[Decision | str], timeout: Any, poll: Any) -> list[Decision | str]:
    if isinstance(decisions, (str, Decision)) or not isinstance(decisions, Sequence):
        raise DecisionValidationError("decisions", "pass a list of decisions (or use request_review for one)")
    items = list(decisions)
    if not items:
        raise DecisionValidationError("decisions", "is empty: pass the decisions to review")
    for item in items:
        decision_id = item.id if isinstance(item, Decision) else str(item)
        try:
            uuid.UUID(decision_id)
        except ValueError:
            raise DecisionValidationError(
                "decision",
                f"{item!r} is not a decision or decision id (UUID); pass the Decision record_decision returned",
            ) from None
    ids = [item.id if isinstance(item, Decision) else str(item) for item in items]
    if len(set(ids)) != len(ids):
        raise DecisionValidationError("decisions", "names a decision twice: ask for each decision's review once")
    if not isinstance(timeout, int) or isinstance(timeout, bool) or timeout <= 0:
        raise DecisionValidationError("timeout", f"expected a positive number of seconds, got {timeout!r}")
    if not isinstance(poll, (int, float)) or isinstance(poll, bool) or poll <= 0:
        raise DecisionValidationError("poll_interval", f"expected a positive number of seconds, got {poll!r}")
    return items


def _context() -> Any:
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


def _ask(items: list[Decision | str], *, timeout: int, suspend: bool, poll: float) -> _Steps:
    """The review of *items* in one form, as a sequence of Prefect calls (see the drivers above)."""
    context = _context()
    flow_run_id = context.flow_run.id
    prefix = "suspended" if suspend else "paused"
    note: str | None = None
    while True:  # asked again (a new key) while the answer is not one that can be recorded
        key = _next_key(context)
        ids = [item.id if isinstance(item, Decision) else str(item) for item in items]
        asked = yield _Call("read_flow_run_input", {"key": f"{key}-decisions", "flow_run_id": flow_run_id})
        now = datetime.now(UTC)
        if asked is None:
            form = _Form(key, flow_run_id, ids, now, now + timedelta(seconds=timeout))
            value = {"decision_ids": ids, "requested_at": now.isoformat(), "due_at": form.due_at.isoformat()}
            yield _Call(
                "create_flow_run_input", {"key": f"{key}-decisions", "value": value, "flow_run_id": flow_run_id}
            )
            for item in items:
                record_review_request(
                    item,
                    requested_by=_REQUESTER,
                    due_at=form.due_at,
                    reference=_reference(form),
                    channel=_CHANNEL,
                    reason=f"review form {key} in the Prefect UI",
                )
        else:
            form = _Form(
                key,
                flow_run_id,
                list(asked["decision_ids"]),
                datetime.fromisoformat(asked["requested_at"]),
                datetime.fromisoformat(asked["due_at"]),
            )
        same = form.ids == ids
        cards = [_card(item) for item in items] if same else [Card(i, {}) for i in form.ids]
        response_key = {"key_prefix": f"{prefix}-{key}-response", "limit": 1, "flow_run_id": flow_run_id}
        answered = yield _Call("filter_flow_run_input", response_key)
        if not same and not answered:
            raise ReviewError(_changed_message(form.ids, ids), tuple(ids))
        response = yield from _wait(
            cards, form, suspend=suspend, poll=poll, timeout=timeout, note=note, stored=bool(answered)
        )
        submitted = yield _Call("filter_flow_run_input", response_key)
        submitted_at = _as_utc(submitted[0].created) if submitted and submitted[0].created else datetime.now(UTC)
        given, reviewer, problems = answers(cards, response)
        if problems:
            note = "The previous answer was not recorded: " + " ".join(problems)
            logger.warning("otel-decisions: review form %s of flow run %s: %s; asking again", key, flow_run_id, note)
            if not same:
                raise ReviewError(_changed_message(form.ids, ids), tuple(ids))
            continue
        marker = yield _Call("read_flow_run_input", {"key": f"{key}-recorded", "flow_run_id": flow_run_id})
        recorded = marker is not None
        results = [
            _record(form, card, answer, reviewer, submitted_at, recorded, item if same else card.decision_id)
            for item, card, answer in zip(items if same else form.ids, cards, given, strict=True)
        ]
        if not recorded:
            value = {"review_ids": [r.review_id for r in results]}
            yield _Call("create_flow_run_input", {"key": f"{key}-recorded", "value": value, "flow_run_id": flow_run_id})
        if not same:
            raise ReviewError(
                _changed_message(form.ids, ids) + " The answer the reviewer gave was recorded for the decisions shown.",
                tuple(ids),
            )
        return results


def _changed_message(shown: list[str], now: list[str]) -> str:
    return (
        f"the decisions asked about ({', '.join(now)}) are not the ones the reviewer was shown "
        f"({', '.join(shown)}): the resumed flow run made its decisions again. Make them stable across a resume: "
        "persist the scoring task's result (@task(persist_result=True), the default cache policy), or give each "
        "decision a deterministic id (record_decision(id=uuid5(...)))"
    )


def _reference(form: _Form) -> str:
    return f"flow-run/{form.flow_run_id}/{form.key}"


def _as_utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _card(item: Decision | str) -> Card:
    """The decision as stored: this process's record of it, the Decision through the masking path, or the
    store's row when this process writes to the store directly."""
    decision_id = item.id if isinstance(item, Decision) else str(item)
    card = decision_card(item)
    if card is None:
        card = _stored_card(decision_id)
    return Card(decision_id, card or {})


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


def _stored_card(decision_id: str) -> dict[str, Any] | None:
    """The decision's typed row, when this process writes to the store itself (else None: no store to read)."""
    runtime = _runtime.get_runtime()
    if "clickhouse" not in runtime.settings.exporters:
        return None
    try:
        from otel_decisions.store.client import get_client

        client = get_client(runtime.settings.resolved_dsn, role="reader")
        try:
            rows = client.query(
                f"SELECT {', '.join(_STORED_COLUMNS.values())} FROM decisions FINAL WHERE decision_id = {{id:String}}",
                parameters={"id": decision_id},
            ).result_rows
        finally:
            client.close()
    except Exception as exc:  # noqa: BLE001 - the form still opens, saying where to look
        logger.warning("otel-decisions: could not read decision %s for its review form: %s", decision_id, exc)
        return None
    if not rows:
        return None
    return dict(zip(_STORED_COLUMNS, rows[0], strict=True))


def _wait(
    cards: list[Card], form: _Form, *, suspend: bool, poll: float, timeout: int, note: str | None, stored: bool
) -> Generator[_Call, Any, Any]:
    """Pause or suspend with the form until the reviewer answers (a stored answer returns at once)."""
    from prefect.exceptions import FlowPauseTimeout
    from prefect.states import Running

    text = "" if stored else description(cards, due_at=form.due_at, note=note)
    run_input = review_form(cards).with_initial_data(description=text) if text else review_form(cards)
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
        for card in cards:
            record_review_expiry(
                card.decision_id,
                requested_by=_REQUESTER,
                due_at=form.due_at,
                reference=_reference(form),
                channel=_CHANNEL,
            )
        # Prefect leaves the run PAUSED after its pause times out: set it running, so a caller that catches
        # ReviewTimeout can go on.
        yield _Call("set_flow_run_state", {"flow_run_id": form.flow_run_id, "state": Running(), "force": True})
        raise ReviewTimeout(
            f"no reviewer answered review form {form.key} of flow run {form.flow_run_id} within {timeout} s; "
            "the expiry is recorded (review_expired) and the decisions stand unreviewed. Catch ReviewTimeout to "
            "escalate, or ask again with a longer timeout",
            tuple(card.decision_id for card in cards),
        ) from None


def _record(
    form: _Form,
    card: Card,
    answer: Answer,
    reviewer: str,
    submitted_at: datetime,
    recorded: bool,
    about: Decision | str,
) -> ReviewResult:
    review_id = _review_id(str(form.flow_run_id), form.key, card.decision_id)
    if not recorded:
        record_review(
            about,
            reviewer=reviewer,
            action=answer.action,
            reason=answer.reason,
            new_outcome=answer.new_outcome,
            original_outcome=card.outcome,
            review_id=review_id,
            reviewed_at=submitted_at,
        )
    outcome: str | None
    if answer.action == semconv.ReviewAction.OVERRIDE.value:
        outcome = answer.new_outcome
    elif answer.action == semconv.ReviewAction.REJECT.value:
        outcome = None
    else:
        outcome = card.outcome
    waited = max(0.0, (submitted_at - form.requested_at).total_seconds())
    return ReviewResult(card.decision_id, answer.action, outcome, card.outcome, answer.reason, review_id, waited)
