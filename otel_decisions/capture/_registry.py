"""Bookkeeping shared by the recording calls and the instrumentor: recent decisions (for review
links) and per-run counts (flow completeness, auto-capture de-duplication); the Prefect run identity.

Example::

    from otel_decisions.capture import prefect_identity, registry

    registry.pop_flow(flow_run_id)
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from opentelemetry.trace import SpanContext

from otel_decisions import semconv


class _Registry:
    """Recent decisions (for review links) and per-run counts (flow completeness, auto-capture de-dup)."""

    def __init__(self, max_recent: int = 10_000) -> None:
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, tuple[SpanContext, int, str]] = OrderedDict()
        self._max = max_recent
        self.per_flow: dict[str, int] = {}
        self.per_task: dict[str, int] = {}

    def add(
        self, decision_id: str, ctx: SpanContext, ts: int, outcome: str, flow_run: str | None, task_run: str | None
    ) -> None:
        with self._lock:
            self._recent[decision_id] = (ctx, ts, outcome)
            if len(self._recent) > self._max:
                self._recent.popitem(last=False)
            if flow_run:
                self.per_flow[flow_run] = self.per_flow.get(flow_run, 0) + 1
            if task_run:
                self.per_task[task_run] = self.per_task.get(task_run, 0) + 1
            # Runs that fail (or end in another process) are never popped: keep the maps bounded.
            for counts in (self.per_flow, self.per_task):
                if len(counts) > self._max:
                    del counts[next(iter(counts))]

    def lookup(self, decision_id: str) -> tuple[SpanContext, int, str] | None:
        with self._lock:
            return self._recent.get(decision_id)

    def pop_flow(self, flow_run: str) -> int:
        with self._lock:
            return self.per_flow.pop(flow_run, 0)

    def pop_task(self, task_run: str) -> int:
        with self._lock:
            return self.per_task.pop(task_run, 0)


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
