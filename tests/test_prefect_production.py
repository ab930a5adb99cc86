"""Every way Prefect runs a flow, on a real ``prefect server start``: each decision is stored once, in
the flow run's trace, parented to its task-run span, and ``otel-decisions reconcile`` accounts for
every task run Prefect reports. With setup that cannot reach the processes the tasks run in,
``reconcile`` lists exactly the task runs that ran unrecorded, exits 1, and the flow said so.

The flows (``tests/apps/matrix_flow.py``) import nothing from otel-decisions; the plugin
(``PREFECT_PLUGINS_ENABLED=true``) sets up every process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.production import (
    BIN,
    PrefectServer,
    assert_recorded_once_in_trace,
    completeness,
    deploy_to_pool,
    flow_env,
    run_deployment,
    run_flow_script,
    serve_matrix,
    start_background,
    stop_group,
    store_dsn,
    wait_for_reconcile,
)

pytestmark = pytest.mark.slow

UNRECORDED_WORKERS = "whose worker processes are not set up to record"
UNRECORDED_SERVED = "run in their own subprocesses, which are not set up to record"
TASK_RUNS = {"plain": lambda k: 2 * k, "mapped": lambda k: k, "pooled": lambda k: k + 1, "dasked": lambda k: k + 1}
PREPARES = {"plain": lambda k: k, "mapped": lambda k: 0, "pooled": lambda k: 1, "dasked": lambda k: 1}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectServer]:
    with PrefectServer(tmp_path_factory.mktemp("prefect-server")) as running:
        yield running


def _check_accounted(server: PrefectServer, env: dict[str, str], work: Path, run_id: str, mode: str, k: int) -> None:
    assert server.wait_finished(run_id) == "COMPLETED"
    report = wait_for_reconcile(run_id, env, store_dsn(work), TASK_RUNS[mode](k), accounted=True, recorded=k)
    assert report.exit_code == 0 and not report.ids("unaccounted"), report.rows
    assert report.names("recorded") == ["score"] * k
    assert report.names("instrumented") == ["prepare"] * PREPARES[mode](k)
    assert_recorded_once_in_trace(store_dsn(work), run_id, k)
    (row,) = completeness(store_dsn(work), env)  # the flow's counts, summed over its processes
    assert (row["captured"], row["stored"], row["missing"]) == (k, k, 0), row


def _check_unaccounted(server: PrefectServer, env: dict[str, str], work: Path, run_id: str, task_runs: int,
                       unaccounted: list[str]):
    """The run finished, and reconcile lists exactly *unaccounted* (task names, sorted) and exits 1."""
    assert server.wait_finished(run_id) == "COMPLETED"
    report = wait_for_reconcile(run_id, env, store_dsn(work), task_runs, accounted=False)
    assert report.exit_code == 1 and report.names("unaccounted") == unaccounted, report.rows
    return report


@pytest.mark.parametrize(
    ("mode", "k", "setup"),
    [
        ("plain", 3, "plugin"),
        ("mapped", 50, "plugin"),
        ("pooled", 6, "plugin"),
        ("pooled", 6, "setup at import"),
        ("pooled", 6, "opentelemetry-instrument"),
        ("dasked", 6, "plugin"),
    ],
)
def test_python_flow_py_records_every_decision_in_the_flow_runs_trace(
    server: PrefectServer, tmp_path: Path, mode: str, k: int, setup: str
) -> None:
    env = flow_env(tmp_path, server.api_url, plugin=setup == "plugin")
    flags = ("--setup-at-import",) if setup == "setup at import" else ()
    launcher = (str(BIN / "opentelemetry-instrument"),) if setup == "opentelemetry-instrument" else ()
    run_id, output = run_flow_script(mode, k, env, *flags, launcher=launcher)
    _check_accounted(server, env, tmp_path, run_id, mode, k)
    assert UNRECORDED_WORKERS not in output


@pytest.mark.parametrize("mode", ["pooled", "dasked"])
def test_setup_in_main_cannot_reach_pool_workers_and_reconcile_lists_what_they_ran(
    server: PrefectServer, tmp_path: Path, mode: str
) -> None:
    """Setup under ``if __name__ == "__main__":`` and no plugin: the flow's own task is recorded, the
    pool's are not; the flow warns once, and reconcile lists exactly the pool's task runs."""
    env = flow_env(tmp_path, server.api_url, plugin=False)
    run_id, output = run_flow_script(mode, 4, env, "--setup-in-main")
    assert output.count(UNRECORDED_WORKERS) == 1, output[-3000:]
    report = _check_unaccounted(server, env, tmp_path, run_id, 5, ["score"] * 4)
    assert report.names("instrumented") == ["prepare"] and not report.ids("recorded")


@pytest.mark.parametrize("setup", ["plugin", "setup in main"])
def test_flow_serve_and_prefect_deployment_run(server: PrefectServer, tmp_path: Path, setup: str) -> None:
    """``flow.serve()`` runs each flow run in a subprocess: the plugin records there; setup in
    ``__main__`` does not reach it, ``serve`` says so once, and reconcile lists every task run."""
    plugin = setup == "plugin"
    env = flow_env(tmp_path, server.api_url, plugin=plugin)
    name = f"serve-{'plugin' if plugin else 'main'}"
    log = tmp_path / "serve.log"
    serving = serve_matrix(env, name, log, *(() if plugin else ("--setup-in-main",)))
    try:
        server.wait_deployment(f"plain/{name}")
        run_id = run_deployment(f"plain/{name}", env, k=3)
        if plugin:
            _check_accounted(server, env, tmp_path, run_id, "plain", 3)
        else:
            _check_unaccounted(server, env, tmp_path, run_id, 6, ["prepare"] * 3 + ["score"] * 3)
    finally:
        stop_group(serving)
    text = log.read_text()
    assert f"FLOW_RUN {run_id}" in text  # the flow run's output is in the serving process's
    assert text.count(UNRECORDED_SERVED) == (0 if plugin else 1), text[-3000:]


@pytest.mark.parametrize("setup", ["plugin", "opentelemetry-instrument", "none"])
def test_process_work_pool_and_prefect_worker_start(server: PrefectServer, tmp_path: Path, setup: str) -> None:
    """``flow.from_source(...).deploy()`` to a process work pool, run by ``prefect worker start``: each
    flow run is ``python -m prefect.engine``, recorded with the plugin or under opentelemetry-instrument
    with no runpy ``RuntimeWarning``; a plain worker records nothing and reconcile says which."""
    env = flow_env(tmp_path, server.api_url, plugin=setup == "plugin")
    slug = setup.replace("-", "")
    pool, deployment = f"pool-{slug}", f"worker-{slug}"
    deploy_to_pool(env, pool, deployment, k=4)
    launcher = [str(BIN / "opentelemetry-instrument")] if setup == "opentelemetry-instrument" else []
    log = tmp_path / "worker.log"
    worker = start_background([*launcher, str(BIN / "prefect"), "worker", "start", "--pool", pool], env, log)
    try:
        run_id = run_deployment(f"plain/{deployment}", env)
        if setup != "none":
            _check_accounted(server, env, tmp_path, run_id, "plain", 4)
        else:
            _check_unaccounted(server, env, tmp_path, run_id, 8, ["prepare"] * 4 + ["score"] * 4)
    finally:
        stop_group(worker)
    text = log.read_text()
    assert f"FLOW_RUN {run_id}" in text  # the flow run's output is in the worker's
    assert "RuntimeWarning" not in text, text[-3000:]


def test_the_matrix_app_imports_nothing_from_otel_decisions_outside_its_setup_flags() -> None:
    """The flows are what a new user writes: otel-decisions appears only behind the setup flags."""
    source = (Path(__file__).parent / "apps" / "matrix_flow.py").read_text()
    lines = [line.strip() for line in source.splitlines() if "otel_decisions" in line and not line.strip().startswith("#")]
    assert lines == ["import otel_decisions", "otel_decisions.configure()", "otel_decisions.PrefectInstrumentor().instrument()"] * 2
