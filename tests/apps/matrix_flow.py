"""Flows with no otel-decisions code, one per way Prefect runs tasks (tests/test_prefect_production.py).

``python matrix_flow.py MODE K [--setup-in-main | --setup-at-import]`` runs one flow and prints
``FLOW_RUN <id>``:

- ``plain``: K decisions on the default task runner, each after a task that decides nothing;
- ``mapped``: ``score.map(range(K))`` on the default (thread-pool) task runner;
- ``pooled``: one task in the flow's process, then K in a ``ProcessPoolTaskRunner``;
- ``dasked``: the same on a local ``DaskTaskRunner`` cluster (two worker processes);
- ``serve NAME``: ``plain.serve(name=NAME)`` (blocks; runs come from ``prefect deployment run``).

``--setup-in-main`` configures otel-decisions under ``if __name__ == "__main__":``, the way a quick
start does: it reaches the flow's own process and no other. ``--setup-at-import`` configures it at
module level, which a spawned pool or Dask worker runs again when it imports the main module.
"""

import sys

from prefect import flow, task
from prefect.context import FlowRunContext
from prefect.task_runners import ProcessPoolTaskRunner
from prefect_dask import DaskTaskRunner

if "--setup-at-import" in sys.argv:
    import otel_decisions

    otel_decisions.configure()
    otel_decisions.PrefectInstrumentor().instrument()


@task
def score(n: int) -> dict:
    return {"decision": "approve" if n % 3 else "refer", "confidence": round(0.6 + n / 200, 3)}


@task
def prepare(n: int) -> int:
    return n * 2


def _flow_run_id() -> str:
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    run_id = str(context.flow_run.id)
    print("FLOW_RUN", run_id, flush=True)
    return run_id


@flow
def plain(k: int = 3) -> str:
    for n in range(k):
        score(prepare(n))
    return _flow_run_id()


@flow
def mapped(k: int = 50) -> str:
    assert len([future.result() for future in score.map(range(k))]) == k
    return _flow_run_id()


@flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
def pooled(k: int = 6) -> str:
    prepare(0)  # called, not submitted: runs in the flow's own process
    assert len([future.result() for future in score.map(range(k))]) == k
    return _flow_run_id()


@flow(
    task_runner=DaskTaskRunner(
        cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "processes": True, "dashboard_address": None}
    )
)
def dasked(k: int = 6) -> str:
    prepare(0)
    assert len([future.result() for future in score.map(range(k))]) == k
    return _flow_run_id()


if __name__ == "__main__":
    mode, argument = sys.argv[1], sys.argv[2]
    if "--setup-in-main" in sys.argv:
        import otel_decisions

        otel_decisions.configure()
        otel_decisions.PrefectInstrumentor().instrument()
    if mode == "serve":
        plain.serve(name=argument)
    else:
        {"plain": plain, "mapped": mapped, "pooled": pooled, "dasked": dasked}[mode](int(argument))
