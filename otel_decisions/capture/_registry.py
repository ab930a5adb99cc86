"""Bookkeeping shared by the recording calls and the instrumentor: recent decisions (for review
links) and per-run counts (flow completeness, auto-capture de-duplication); the Prefect run identity.

Example::

    from otel_decisions.capture import prefect_identity, registry

    registry.pop_flow(flow_run_id)
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import SpanContext

from otel_decisions import semconv

MAX_LEDGER_ROWS = 1000
"""A flow run's decision artifact lists at most this many decisions (all are counted)."""


_CARD_KEYS = (
    semconv.DECISION_TYPE,
    semconv.DECISION_OUTCOME,
    semconv.DECISION_OPTIONS,
    semconv.DECISION_CONFIDENCE,
    semconv.DECISION_SCORE,
    semconv.DECISION_THRESHOLD,
    semconv.DECISION_REASONS,
    semconv.DECISION_RATIONALE,
    semconv.DECISION_MODEL_NAME,
    semconv.DECISION_MODEL_VERSION,
    semconv.DECISION_POLICY_VERSION,
    semconv.DECISION_AUTOMATION,
    semconv.DECISION_REVIEW_REQUIRED,
)


def card(attributes: Mapping[str, Any]) -> dict[str, Any]:
    """What a review form and an artifact row need of a decision's stored attributes: the inputs only
    for a decision flagged for review (they can be large; a form for another one masks them again from
    the Decision)."""
    kept = {key: attributes[key] for key in _CARD_KEYS if key in attributes}
    if attributes.get(semconv.DECISION_REVIEW_REQUIRED) is True and semconv.DECISION_INPUTS in attributes:
        kept[semconv.DECISION_INPUTS] = attributes[semconv.DECISION_INPUTS]
    return kept


class _Registry:
    """Recent decisions (for review links and review forms), per-run counts (flow completeness,
    auto-capture de-dup) and, for flow runs started in this process with artifacts on, their
    decisions and reviews."""

    def __init__(self, max_recent: int = 10_000, max_ledger: int = MAX_LEDGER_ROWS) -> None:
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, tuple[Any, int, str, Mapping[str, Any]]] = OrderedDict()
        """decision id -> (span context, time, outcome, card); a batch's entries hold the span context's
        arguments and the attributes until looked up"""
        self._max = max_recent
        self._max_ledger = max_ledger
        self.per_flow: dict[str, int] = {}
        self.per_task: dict[str, int] = {}
        self._ledgers: OrderedDict[str, FlowLedger] = OrderedDict()
        self._reviews: OrderedDict[str, tuple[str, str | None]] = OrderedDict()

    def add(
        self,
        decision_id: str,
        ctx: SpanContext,
        ts: int,
        outcome: str,
        flow_run: str | None,
        task_run: str | None,
        attributes: Mapping[str, Any] | None = None,
    ) -> None:
        """A decision was recorded: the :func:`card` of its (masked) *attributes* is kept for review forms
        and, when its flow run was started here with artifacts on, listed in the run's ledger."""
        kept = card(attributes) if attributes else {}
        with self._lock:
            self._recent[decision_id] = (ctx, ts, outcome, kept)
            if len(self._recent) > self._max:
                self._recent.popitem(last=False)
            if flow_run:
                self.per_flow[flow_run] = self.per_flow.get(flow_run, 0) + 1
                ledger = self._ledgers.get(flow_run)
                if ledger is not None:
                    ledger.add_decision(decision_id, outcome, kept, self._max_ledger)
            if task_run:
                self.per_task[task_run] = self.per_task.get(task_run, 0) + 1
            # Runs that fail (or end in another process) are never popped: keep the maps bounded.
            for counts in (self.per_flow, self.per_task):
                if len(counts) > self._max:
                    del counts[next(iter(counts))]

    def add_many(
        self,
        decisions: Sequence[tuple[str, int, str, Mapping[str, Any]]],
        context_of: Callable[[int], tuple[Any, ...]],
        flow_run: str | None,
        task_run: str | None,
    ) -> None:
        """:meth:`add` for a batch: ``(decision id, time, stored outcome, attributes)`` in recording order,
        and the ``SpanContext`` arguments of each by index. Only the newest are kept for review forms (as
        :meth:`add` would keep them; their span context and card are made when looked up); every one is
        counted and listed in its flow run's ledger."""
        count = len(decisions)
        if not count:
            return
        keep_from = max(0, count - self._max)
        recent = [
            (decision_id, (context_of(index), ts, outcome, attributes))
            for index, (decision_id, ts, outcome, attributes) in enumerate(decisions[keep_from:], keep_from)
        ]
        with self._lock:
            for decision_id, entry in recent:
                self._recent[decision_id] = entry
            while len(self._recent) > self._max:
                self._recent.popitem(last=False)
            if flow_run:
                self.per_flow[flow_run] = self.per_flow.get(flow_run, 0) + count
                ledger = self._ledgers.get(flow_run)
                if ledger is not None:
                    for decision_id, _ts, outcome, attributes in decisions:
                        ledger.add_decision(decision_id, outcome, attributes, self._max_ledger)
            if task_run:
                self.per_task[task_run] = self.per_task.get(task_run, 0) + count
            for counts in (self.per_flow, self.per_task):
                if len(counts) > self._max:
                    del counts[next(iter(counts))]

    def add_earlier(
        self, decision_id: str, ctx: SpanContext | None, ts: int, attributes: Mapping[str, Any], flow_run: str
    ) -> None:
        """A decision recorded earlier (a task's cache hit; a resumed run's reviewed decision, recorded before
        the run suspended): known to review forms and listed in its flow run's ledger as earlier, not counted
        as recorded again."""
        kept = card(attributes)
        outcome = str(kept.get(semconv.DECISION_OUTCOME, ""))
        with self._lock:
            if ctx is not None:
                self._recent[decision_id] = (ctx, ts, outcome, kept)
                if len(self._recent) > self._max:
                    self._recent.popitem(last=False)
            ledger = self._ledgers.get(flow_run)
            if ledger is not None:
                ledger.add_decision(decision_id, outcome, kept, self._max_ledger, earlier=True)

    def start_ledger(self, flow_run: str) -> None:
        """A flow run starts in this process with artifacts on: list what it records until :meth:`pop_ledger`."""
        with self._lock:
            if flow_run not in self._ledgers:
                self._ledgers[flow_run] = FlowLedger()
                if len(self._ledgers) > 1000:  # a run that never ended (killed) is forgotten eventually
                    self._ledgers.popitem(last=False)

    def add_review(self, decision_id: str, action: str, new_outcome: str | None, flow_run: str | None) -> None:
        """A review was recorded (in *flow_run*, if in one): the latest action on each decision is kept."""
        with self._lock:
            self._reviews[decision_id] = (action, new_outcome)
            self._reviews.move_to_end(decision_id)
            if len(self._reviews) > self._max:
                self._reviews.popitem(last=False)
            ledger = self._ledgers.get(flow_run) if flow_run else None
            if ledger is not None:
                ledger.add_review(action)

    def lookup(self, decision_id: str) -> tuple[SpanContext, int, str, Mapping[str, Any]] | None:
        """(span context, time, stored outcome, :func:`card`) of a decision recorded here lately."""
        with self._lock:
            entry = self._recent.get(decision_id)
            if entry is not None and type(entry[0]) is tuple:  # a batch's: made now
                entry = (SpanContext(*entry[0]), entry[1], entry[2], card(entry[3]))
                self._recent[decision_id] = entry
            return entry

    def review_of(self, decision_id: str) -> tuple[str, str | None] | None:
        """(action, new outcome) of the latest review of *decision_id* recorded here lately."""
        with self._lock:
            return self._reviews.get(decision_id)

    def pop_ledger(self, flow_run: str) -> FlowLedger | None:
        """The decisions and reviews this process recorded in *flow_run* (forgotten after this call)."""
        with self._lock:
            return self._ledgers.pop(flow_run, None)

    def pop_flow(self, flow_run: str) -> int:
        with self._lock:
            return self.per_flow.pop(flow_run, 0)

    def pop_task(self, task_run: str) -> int:
        with self._lock:
            return self.per_task.pop(task_run, 0)


@dataclass
class FlowLedger:
    """What one process recorded in one flow run, for the run's decision artifacts."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    """One artifact row per decision, in recording order; at most ``MAX_LEDGER_ROWS`` (the rest are counted)."""
    decisions: int = 0
    earlier: int = 0
    """Of ``decisions``, those recorded earlier (a task's cache hit, or before a resumed run suspended)."""
    listed: set[str] = field(default_factory=set)
    """Ids of the listed rows."""
    outcomes: dict[str, int] = field(default_factory=dict)
    below_threshold: int = 0
    review_required: list[str] = field(default_factory=list)
    """Ids of decisions flagged for review (at most ``MAX_LEDGER_ROWS``)."""
    review_required_count: int = 0
    models: dict[str, int] = field(default_factory=dict)
    reviews: int = 0
    review_actions: dict[str, int] = field(default_factory=dict)

    def add_decision(
        self, decision_id: str, outcome: str, attributes: Mapping[str, Any], limit: int, earlier: bool = False
    ) -> None:
        if decision_id in self.listed:
            return  # recorded again (a retried task with a deterministic id), or seen earlier twice
        self.decisions += 1
        self.earlier += earlier
        name = attributes.get(semconv.DECISION_MODEL_NAME)
        model = f"{name} {attributes.get(semconv.DECISION_MODEL_VERSION) or ''}".strip() if name else ""
        required = attributes.get(semconv.DECISION_REVIEW_REQUIRED) is True
        if len(self.rows) < limit:  # (beyond the listed rows, a decision seen twice counts twice)
            self.listed.add(decision_id)
            confidence, threshold = (
                attributes.get(semconv.DECISION_CONFIDENCE),
                attributes.get(semconv.DECISION_THRESHOLD),
            )
            self.rows.append(
                {
                    "decision_id": decision_id,
                    "type": attributes.get(semconv.DECISION_TYPE, ""),
                    "outcome": outcome,
                    "confidence": round(confidence, 4) if isinstance(confidence, float) else None,
                    "threshold": round(threshold, 4) if isinstance(threshold, float) else None,
                    "model_version": model,
                    "review_required": required,
                    "earlier": earlier,
                }
            )
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1
        judged = attributes.get(semconv.DECISION_SCORE)
        if judged is None:
            judged = attributes.get(semconv.DECISION_CONFIDENCE)
        threshold_value = attributes.get(semconv.DECISION_THRESHOLD)
        if isinstance(judged, float) and isinstance(threshold_value, float) and judged < threshold_value:
            self.below_threshold += 1
        if required:
            self.review_required_count += 1
            if len(self.review_required) < limit:
                self.review_required.append(decision_id)
        if model:
            self.models[model] = self.models.get(model, 0) + 1

    def add_review(self, action: str) -> None:
        self.reviews += 1
        self.review_actions[action] = self.review_actions.get(action, 0) + 1


registry = _Registry()


def prefect_identity() -> dict[str, str]:
    """``prefect.*`` ids of the current task / flow run (empty outside Prefect)."""
    out: dict[str, str] = {}
    try:
        from prefect.context import FlowRunContext, TaskRunContext
    except ImportError:  # pragma: no cover - prefect is a dependency
        return out
    task_ctx = TaskRunContext.get()
    if task_ctx is not None:
        task_run = task_ctx.task_run
        out[semconv.PREFECT_TASK_RUN_ID] = str(task_run.id)
        out[semconv.PREFECT_TASK_NAME] = task_ctx.task.name
        if task_run.flow_run_id is not None:
            out[semconv.PREFECT_FLOW_RUN_ID] = str(task_run.flow_run_id)
    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None:
        if flow_ctx.flow_run is not None and semconv.PREFECT_FLOW_RUN_ID not in out:
            out[semconv.PREFECT_FLOW_RUN_ID] = str(flow_ctx.flow_run.id)
        if flow_ctx.flow is not None:
            out[semconv.PREFECT_FLOW_NAME] = flow_ctx.flow.name
    return out
