"""Prefect the way it runs in production, for tests and benchmarks: a real ``prefect server start``,
``flow.serve()``, a process work pool with ``prefect worker start``, and ``prefect deployment run``.

Everything runs as subprocesses of the caller, with an environment that holds nothing of the
caller's ``OTEL_*`` / ``PREFECT_*`` settings. The flows are ``tests/apps/matrix_flow.py``: they
import nothing from otel-decisions.

Example::

    with PrefectServer(tmp_path / "server") as server:
        env = flow_env(tmp_path, server.api_url, plugin=True)
        run_id, output = run_flow_script("plain", 3, env)
        report = wait_for_reconcile(run_id, env, task_runs=6)
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "apps"
MATRIX_APP = APPS / "matrix_flow.py"
BIN = Path(sys.executable).parent
HMAC_KEY = "production-test-key-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def base_env(prefect_home: Path, **extra: str) -> dict[str, str]:
    """The caller's environment without its OpenTelemetry and Prefect settings."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "PREFECT_"))}
    env.pop("PYTHONPATH", None)
    env.update({
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
        **extra,
    })
    return env


def flow_env(work: Path, api_url: str, *, plugin: bool, **extra: str) -> dict[str, str]:
    """Where flows, servers of flows and workers run: one embedded store in ``work/data``."""
    return base_env(
        work / "prefect",
        PREFECT_API_URL=api_url,
        PREFECT_PLUGINS_ENABLED="true" if plugin else "false",
        OTEL_DECISIONS_DATA_DIR=str(work / "data"),
        OTEL_DECISIONS_HMAC_KEY=HMAC_KEY,
        OTEL_DECISIONS_EXPORTERS="clickhouse",
        **extra,
    )


def store_dsn(work: Path) -> str:
    return f"chdb://{work / 'data' / 'chdb'}"


class PrefectServer:
    """``prefect server start`` on a free loopback port, in its own process group; stopped on exit."""

    def __init__(self, home: Path, *, ui: bool = False) -> None:
        self.home = home
        self.ui = ui
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.api_url = f"{self.url}/api"
        self.log = home / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> PrefectServer:
        self.home.mkdir(parents=True, exist_ok=True)
        env = base_env(self.home, PREFECT_PLUGINS_ENABLED="true")  # the plugin must leave the server alone
        if self.ui:  # the UI asks the API at this address (by default port 4200's)
            env["PREFECT_SERVER_UI_API_URL"] = self.api_url
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(self.port),
                 *(() if self.ui else ("--no-ui",))],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.home,
            )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prefect server exited {self.process.returncode}: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.api_url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"prefect server did not answer in 180 s: {self.log.read_text()[-3000:]}")

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            stop_group(self.process)

    def flow_run(self, run_id: str) -> dict[str, Any]:
        return dict(httpx.get(f"{self.api_url}/flow_runs/{run_id}", timeout=10).json())

    def wait_finished(self, run_id: str, timeout_s: float = 240) -> str:
        """The flow run's final state type (COMPLETED, FAILED, ...), once Prefect reports one."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            state = (self.flow_run(run_id).get("state") or {}).get("type")
            if state in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
                return str(state)
            time.sleep(0.3)
        raise AssertionError(f"flow run {run_id} did not finish in {timeout_s} s: {self.flow_run(run_id)}")

    def wait_deployment(self, name: str, timeout_s: float = 120) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if httpx.get(f"{self.api_url}/deployments/name/{name}", timeout=5).status_code == 200:
                return
            time.sleep(0.3)
        raise AssertionError(f"deployment {name} did not appear in {timeout_s} s")


def stop_group(process: subprocess.Popen[Any], grace_s: float = 20) -> None:
    """SIGTERM the process group, then SIGKILL what is left after *grace_s*."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def run_flow_script(mode: str, k: int, env: dict[str, str], *flags: str, launcher: tuple[str, ...] = ()) -> tuple[str, str]:
    """``python matrix_flow.py MODE K FLAGS``: the flow run's id and everything it printed."""
    run = subprocess.run(
        [*launcher, sys.executable, str(MATRIX_APP), mode, str(k), *flags],
        env=env, capture_output=True, text=True, timeout=600, cwd=APPS,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    (run_id,) = re.findall(r"^FLOW_RUN (\S+)$", run.stdout, re.M)
    return run_id, output


def start_background(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=APPS)


def serve_matrix(env: dict[str, str], name: str, log: Path, *flags: str) -> subprocess.Popen[bytes]:
    """``python matrix_flow.py serve NAME``: ``plain.serve(name=NAME)`` until stopped (deployment
    ``plain/NAME``)."""
    return start_background([sys.executable, str(MATRIX_APP), "serve", name, *flags], env, log)


def deploy_to_pool(env: dict[str, str], pool: str, deployment: str, k: int) -> None:
    """A process work pool, and ``flow.from_source(<apps>, "matrix_flow.py:plain").deploy(...)`` to it."""
    created = subprocess.run([str(BIN / "prefect"), "work-pool", "create", pool, "--type", "process"],
                             env=env, capture_output=True, text=True, timeout=180, cwd=APPS)
    assert created.returncode == 0, created.stdout + created.stderr
    code = (
        "from prefect import flow\n"
        f"flow.from_source({str(APPS)!r}, 'matrix_flow.py:plain').deploy("
        f"name={deployment!r}, work_pool_name={pool!r}, parameters={{'k': {k}}})\n"
    )
    deployed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300,
                              cwd=APPS)
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr


def run_deployment(name: str, env: dict[str, str], **parameters: Any) -> str:
    """``prefect deployment run NAME [-p k=v ...]``: the new flow run's id."""
    args = [str(BIN / "prefect"), "deployment", "run", name]
    for key, value in parameters.items():
        args += ["--param", f"{key}={json.dumps(value)}"]
    ran = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, cwd=APPS)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    (run_id,) = re.findall(r"UUID: (\S+)", ran.stdout)
    return run_id


@dataclass
class Reconciled:
    exit_code: int
    rows: list[dict[str, Any]]
    summary: str

    def names(self, classification: str) -> list[str]:
        return sorted(row["task_name"].rsplit("-", 1)[0] for row in self.rows if row["classification"] == classification)

    def ids(self, classification: str) -> set[str]:
        return {row["task_run_id"] for row in self.rows if row["classification"] == classification}


def reconcile_cli(run_id: str, env: dict[str, str], dsn: str) -> Reconciled:
    ran = subprocess.run(
        [sys.executable, "-m", "otel_decisions.cli", "reconcile", "--flow-run", run_id, "--dsn", dsn, "--format", "json"],
        env=env, capture_output=True, text=True, timeout=300, cwd=APPS,
    )
    assert ran.returncode in (0, 1), ran.stdout + ran.stderr
    return Reconciled(ran.returncode, json.loads(ran.stdout), ran.stderr.strip())


def wait_for_reconcile(
    run_id: str,
    env: dict[str, str],
    dsn: str,
    task_runs: int,
    *,
    accounted: bool,
    recorded: int = 0,
    timeout_s: float = 120,
) -> Reconciled:
    """Reconcile once Prefect reports all *task_runs* (its event pipeline records them shortly after
    the flow run ends) and, when every run is expected to be *accounted* for, once the store holds
    what the run's processes flushed as they exited: at least *recorded* task runs with their
    decisions (a task run's span can land before its decisions, which count as "instrumented" until
    then). The last answer when the time is up."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = reconcile_cli(run_id, env, dsn)
        complete = (
            len(report.rows) >= task_runs
            and (report.exit_code == 0 or not accounted)
            and len(report.ids("recorded")) >= recorded
        )
        if complete or time.monotonic() > deadline:
            return report
        time.sleep(1)


def stored_decisions(dsn: str, flow_run_id: str) -> list[tuple[Any, ...]]:
    """Each decision record of a flow run: (decision id, its trace, flow run's trace, parent's run type,
    whether the parent is the decision's own task run)."""
    from otel_decisions.semconv import RecordKind, record_sql
    from otel_decisions.store.client import get_client

    client = get_client(dsn, role="reader")
    try:
        return list(client.query(
            "SELECT d.SpanAttributes['decision.id'], d.TraceId, "
            "  (SELECT any(TraceId) FROM otel_traces WHERE SpanAttributes['prefect.run.type'] = 'flow' "
            "     AND SpanAttributes['prefect.run.id'] = {run:String}), "
            "  t.SpanAttributes['prefect.run.type'], "
            "  t.SpanAttributes['prefect.run.id'] = d.SpanAttributes['prefect.task_run.id'] "
            "FROM otel_traces AS d LEFT JOIN otel_traces AS t ON d.ParentSpanId = t.SpanId AND d.TraceId = t.TraceId "
            f"WHERE {record_sql(RecordKind.DECISION, column='d.SpanName')} "
            "  AND d.SpanAttributes['prefect.flow_run.id'] = {run:String}",
            parameters={"run": flow_run_id},
        ).result_rows)
    finally:
        client.close()


def assert_recorded_once_in_trace(dsn: str, flow_run_id: str, expected: int) -> None:
    """Every expected decision is stored once, in the flow run's trace, parented to its task-run span."""
    rows = stored_decisions(dsn, flow_run_id)
    assert len(rows) == expected, rows
    assert len({row[0] for row in rows}) == expected, "a decision is stored more than once"
    for decision_id, trace_id, flow_trace, parent_type, own_task in rows:
        assert trace_id == flow_trace, f"decision {decision_id} is outside the flow run's trace"
        assert parent_type == "task" and own_task == 1, f"decision {decision_id} is not a child of its task-run span"


def completeness(dsn: str, env: dict[str, str]) -> list[dict[str, Any]]:
    """The catalogue's ``delivery_completeness`` answer, through the CLI."""
    ran = subprocess.run(
        [sys.executable, "-m", "otel_decisions.cli", "query", "run", "delivery_completeness", "--dsn", dsn,
         "--format", "json"],
        env=env, capture_output=True, text=True, timeout=300, cwd=APPS,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    return list(json.loads(ran.stdout))
