"""Account for every task run Prefect knows about, against what the decision store holds.

Prefect's API (a server, Prefect Cloud, or the ephemeral database) is the record of which task
runs ran; the store is the record of what was captured. Each task run is classified:

- ``recorded``: one or more decisions are stored for it;
- ``instrumented``: its task-run span is stored (it ran in a process that records) but it made
  no decision;
- ``unaccounted``: the store holds no trace of it: it ran in a process without otel-decisions
  (setup under ``if __name__ == "__main__":`` in a worker, a pool without the plugin, ...).

The store side is the catalogue query ``task_run_accounting``; this module only asks Prefect and
joins. ``otel-decisions reconcile`` prints the result and exits 1 when any run is unaccounted.

Example::

    from otel_decisions.reconcile import reconcile
    from otel_decisions.store.client import get_client

    report = reconcile(get_client(role="reader"), flow_run_id="6a0c...")
    assert not report.unaccounted, report.unaccounted
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from otel_decisions.catalogue import run_query
from otel_decisions.errors import FieldError, OtelDecisionsError, StoreError

Classification = Literal["recorded", "instrumented", "unaccounted"]
FINISHED_STATES = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")
"""Task runs in these state types ran (or tried to): each must be accounted for."""


@dataclass(frozen=True)
class TaskRunAccount:
    """One task run as Prefect reports it and what the store holds for it."""

    task_run_id: str
    flow_run_id: str
    task_name: str
    state: str
    decisions: int
    classification: Classification


@dataclass
class ReconcileReport:
    """Every finished task run of the selection, classified."""

    runs: list[TaskRunAccount] = field(default_factory=list)

    def of(self, classification: Classification) -> list[TaskRunAccount]:
        return [run for run in self.runs if run.classification == classification]

    @property
    def unaccounted(self) -> list[TaskRunAccount]:
        return self.of("unaccounted")


def read_task_runs(*, flow_run_id: str | None = None, since: datetime | None = None, limit: int = 10_000) -> list[Any]:
    """The finished task runs Prefect's API reports for a flow run, or started since a time."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        TaskRunFilter,
        TaskRunFilterStartTime,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import TaskRunSort

    if flow_run_id is None and since is None:
        raise FieldError("--flow-run / --since", "say which task runs to account for: a flow run id or a start time")
    try:
        flow_filter = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id)])) if flow_run_id else None
    except ValueError:
        raise FieldError("--flow-run", f"{flow_run_id!r} is not a flow run id (UUID)") from None
    task_filter = TaskRunFilter(
        state=TaskRunFilterState(type=TaskRunFilterStateType(any_=[StateType(s) for s in FINISHED_STATES])),
        start_time=TaskRunFilterStartTime(after_=since) if since is not None else None,  # type: ignore[arg-type]  # a datetime is what Prefect's DateTime is
    )
    try:
        with get_client(sync_client=True) as client:
            runs: list[Any] = []
            while True:
                page = client.read_task_runs(
                    flow_run_filter=flow_filter,
                    task_run_filter=task_filter,
                    sort=TaskRunSort.ID_DESC,  # a stable order for paging
                    limit=200,
                    offset=len(runs),
                )
                runs.extend(page)
                if len(page) < 200:
                    return runs
                if len(runs) >= limit:
                    raise FieldError(
                        "--since", f"more than {limit} task runs match; reconcile a shorter period or one flow run"
                    )
    except OtelDecisionsError:
        raise
    except Exception as exc:
        raise StoreError(
            f"cannot read task runs from Prefect's API ({exc}); set PREFECT_API_URL to your server or Cloud workspace"
        ) from exc


def classify(task_runs: Sequence[Any], store: Any | None) -> ReconcileReport:
    """Join Prefect's task runs with the store's ``task_run_accounting`` answer for them. With no
    store (``None``: nothing was ever recorded there) every task run is unaccounted."""
    report = ReconcileReport()
    if not task_runs:
        return report
    ids = [str(run.id) for run in task_runs]
    answer = (
        {row[0]: row for row in run_query(store, "task_run_accounting", {"task_run_ids": ids}).rows}
        if store is not None
        else {}
    )
    for run in task_runs:
        _id, decisions, span_stored = answer.get(str(run.id), (str(run.id), 0, False))
        classification: Classification = "recorded" if decisions else "instrumented" if span_stored else "unaccounted"
        state = getattr(getattr(run, "state", None), "type", None)
        report.runs.append(
            TaskRunAccount(
                task_run_id=str(run.id),
                flow_run_id=str(run.flow_run_id or ""),
                task_name=str(run.name),
                state=str(getattr(state, "value", state) or ""),
                decisions=int(decisions),
                classification=classification,
            )
        )
    return report


def reconcile(store: Any | None, *, flow_run_id: str | None = None, since: datetime | None = None) -> ReconcileReport:
    """Classify every finished task run of a flow run (or since a time) against the store (``None``:
    there is no store, so nothing was recorded)."""
    return classify(read_task_runs(flow_run_id=flow_run_id, since=since), store)
