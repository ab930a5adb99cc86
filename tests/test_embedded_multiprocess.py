"""Many real processes on ONE embedded database directory at the same time (the issue's "Must show").

1. A long-running owner (``otel-decisions serve --http-port 0 --tcp-port 0`` in the foreground),
   four recording processes (``configure(exporters=["clickhouse"], ...)`` + ``record_decision``,
   two of them sharing one data directory) and ``otel-decisions query run`` every second while
   they record: no "locked" error anywhere, every query answered, every decision stored once.
2. Twenty consecutive runs of a small real Prefect flow script (``python tests/apps/decision_flow.py``;
   the first run starts the detached owner through ``ensure_server``), each followed at once by
   ``otel-decisions query run``: the run's decisions are all there after every run, and no
   process says "client has been closed" or "not yet delivered".

Wall times are printed as ``MEASURED ...`` lines (run pytest with ``-s``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from otel_decisions.store import embedded
from otel_decisions.store.client import get_client

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"
HMAC_KEY = "multiprocess-test-hmac-key-0123456789"
FORBIDDEN_OUTPUT = ("locked", "client has been closed", "not yet delivered", "Traceback")


def measured(name: str, value: float, unit: str = "s") -> None:
    print(f"\nMEASURED {name} = {value:.4f} {unit}", flush=True)


def base_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_DECISIONS_", "PREFECT_"))}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "COLUMNS": "200",
            "TZ": "UTC",
            "OTEL_DECISIONS_HMAC_KEY": HMAC_KEY,
            "OTEL_DECISIONS_DATA_DIR": str(tmp / "cli-data"),
            "PREFECT_HOME": str(tmp / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            **extra,
        }
    )
    return env


@dataclass
class Ran:
    args: list[str]
    returncode: int
    wall_s: float
    stdout: str
    stderr: str


def run(args: list[str], env: dict[str, str], timeout_s: float = 120) -> Ran:
    started = time.monotonic()
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout_s)
    return Ran(args, done.returncode, time.monotonic() - started, done.stdout, done.stderr)


def cli_args(*args: str) -> list[str]:
    return [sys.executable, "-m", "otel_decisions.cli", *args]


def volume_by_type(ran: Ran) -> dict[str, int]:
    """decision_type -> decisions, from ``query run decision_volume_daily --format json``."""
    totals: dict[str, int] = {}
    for row in json.loads(ran.stdout):
        totals[row["decision_type"]] = totals.get(row["decision_type"], 0) + int(row["decisions"])
    return totals


def bad_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if any(word.lower() in line.lower() for word in FORBIDDEN_OUTPUT)]


def stop_process(process: subprocess.Popen[Any], grace_s: float = 0.0) -> None:
    """End a process group this test started (SIGTERM first if ``grace_s``, then SIGKILL)."""
    if process.poll() is None and grace_s:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# ----------------------------------------------------------------------------- owner + 4 recorders + queries
RECORDERS = 4
PER_RECORDER = 300


def test_owner_four_recorders_and_cli_queries_on_one_directory(tmp_path: Path) -> None:
    store = tmp_path / "store"
    dsn = f"chdb://{store}"
    env = base_env(tmp_path)
    serve = subprocess.Popen(
        cli_args("serve", "--http-port", "0", "--tcp-port", "0", "--dsn", dsn),
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    recorders: list[subprocess.Popen[str]] = []
    try:
        deadline = time.monotonic() + 60
        while (endpoint := embedded.read_endpoint(store)) is None:
            assert serve.poll() is None, serve.communicate()
            assert time.monotonic() < deadline, "otel-decisions serve published no endpoint"
            time.sleep(0.05)
        assert endpoint.pid == serve.pid
        applied = run(cli_args("schema", "apply", "--dsn", dsn), env)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        measured("schema_apply_cli_s", applied.wall_s)

        queries: list[tuple[float, Ran]] = []
        in_process: list[tuple[float, int]] = []
        done = threading.Event()
        t0 = time.monotonic()

        def query_every_second() -> None:
            while True:
                last = done.is_set()
                started = time.monotonic()
                ran = run(cli_args("query", "run", "decision_volume_daily", "--dsn", dsn, "--format", "json"), env)
                queries.append((started - t0, ran))
                if last:
                    return
                time.sleep(max(0.0, 1.0 - (time.monotonic() - started)))

        def count_in_process() -> None:
            reader = get_client(dsn, role="reader")
            try:
                while not done.is_set():
                    started = time.monotonic()
                    count = reader.command("SELECT count() FROM decisions FINAL")
                    in_process.append((time.monotonic() - started, int(count)))
                    time.sleep(0.25)
            finally:
                reader.close()

        threads = [threading.Thread(target=query_every_second), threading.Thread(target=count_in_process)]
        for thread in threads:
            thread.start()
        data_dirs = [tmp_path / "shared-data", tmp_path / "shared-data", tmp_path / "data-2", tmp_path / "data-3"]
        started = time.monotonic()
        recorders = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(APPS / "record_decisions.py"),
                    dsn,
                    str(data_dirs[i]),
                    str(PER_RECORDER),
                    "--type",
                    f"mp.recorder{i}",
                    "--pace-s",
                    "0.01",
                    "--hmac-key",
                    HMAC_KEY,
                ],
                cwd=REPO,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
            for i in range(RECORDERS)
        ]
        outputs = [recorder.communicate(timeout=300) for recorder in recorders]
        recording_s = time.monotonic() - started
        done.set()
        for thread in threads:
            thread.join(120)
        measured("four_recorders_wall_s", recording_s, f"s ({RECORDERS} x {PER_RECORDER} decisions)")

        for i, (recorder, (out, err)) in enumerate(zip(recorders, outputs, strict=True)):
            assert recorder.returncode == 0, f"recorder {i}: {err}"
            assert not bad_lines(out + err), f"recorder {i}: {bad_lines(out + err)}"
            assert out.splitlines()[-1].startswith(f"DONE {PER_RECORDER} "), out[-500:]
            measured(f"recorder_{i}_recording_s", float(out.splitlines()[-1].split()[2]))
        returned = [line.split()[1] for out, _ in outputs for line in out.splitlines() if line.startswith("ID ")]
        assert len(returned) == len(set(returned)) == RECORDERS * PER_RECORDER

        during = [ran for at, ran in queries if at < recording_s]
        for _, ran in queries:
            assert ran.returncode == 0, ran.stdout + ran.stderr
            assert not bad_lines(ran.stdout + ran.stderr), bad_lines(ran.stdout + ran.stderr)
            json.loads(ran.stdout)  # an answer, not an error
        assert len(during) >= 3, f"only {len(during)} queries ran while recording ({recording_s:.1f} s)"
        walls = [ran.wall_s for _, ran in queries]
        measured("cli_query_while_recording_count", len(during), "queries")
        measured("cli_query_wall_mean_s", statistics.mean(walls))
        measured("cli_query_wall_max_s", max(walls))
        latencies = [latency for latency, _ in in_process]
        measured("in_process_count_query_mean_s", statistics.mean(latencies))
        measured("in_process_count_query_max_s", max(latencies))
        counts = [count for _, count in in_process]
        assert counts == sorted(counts), "a count went down while recording"
        seen_growing = len(set(counts)) > 2
        measured("in_process_distinct_counts_seen", len(set(counts)), "(the store grew while queried)")

        final = volume_by_type(queries[-1][1])
        assert final == {f"mp.recorder{i}": PER_RECORDER for i in range(RECORDERS)}, final
        reader = get_client(dsn, role="reader")
        try:
            total, distinct = reader.query(
                "SELECT count(decision_id), uniqExact(decision_id) FROM decisions FINAL"
            ).result_rows[0]
            stored = {row[0] for row in reader.query("SELECT decision_id FROM decisions FINAL").result_rows}
        finally:
            reader.close()
        assert total == distinct == RECORDERS * PER_RECORDER
        assert stored == set(returned)
        assert seen_growing or recording_s < 3
        assert embedded.read_endpoint(store) == endpoint  # one owner throughout: the serve process
        assert not _owner_pids(store), "a recorder started a second owner"

        started = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=30)
        measured("serve_stop_after_recording_s", time.monotonic() - started)
        assert serve.returncode == 0, out + err
        assert not bad_lines(out + err)
        log = store / embedded.LOG_FILE
        assert not (log.exists() and bad_lines(log.read_text())), "owner.log reports a lock problem"
    finally:
        for recorder in recorders:
            stop_process(recorder)
        stop_process(serve)


def _owner_pids(data_dir: Path) -> list[int]:
    """Detached owners (``serve-owner`` processes) of ``data_dir``."""
    wanted = str(data_dir.resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"serve-owner" in argv and wanted in argv and embedded._pid_alive(int(entry.name)):
                found.append(int(entry.name))
    return found


# ----------------------------------------------------------------------------- 20 Prefect flow runs
RUNS = 20
K = 3


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start_prefect_server(env: dict[str, str], log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A temporary Prefect API server for the flow runs: API only, no UI, no services."""
    port = _free_port()
    with log.open("wb") as handle:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-services",
                "--no-ui",
                "--analytics-off",
            ],
            cwd=log.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return server, url
        except OSError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            stop_process(server)
            raise AssertionError(f"the Prefect server did not start: {log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.2)


def test_twenty_flow_runs_each_counted_at_once(tmp_path: Path) -> None:
    store = tmp_path / "store"
    dsn = f"chdb://{store}"
    env = base_env(tmp_path)
    started = time.monotonic()
    server, api_url = _start_prefect_server(env, tmp_path / "prefect-server.log")
    measured("prefect_server_start_s", time.monotonic() - started)
    flow_env = {
        **env,
        "PREFECT_API_URL": api_url,
        "DECISION_FLOW_DSN": dsn,
        "DECISION_FLOW_DATA_DIR": str(tmp_path / "flow-data"),
        "DECISION_FLOW_HMAC_KEY": HMAC_KEY,
        "DECISION_FLOW_K": str(K),
    }
    flow_walls: list[float] = []
    query_walls: list[float] = []
    try:
        for i in range(RUNS):
            decision_type = f"flowtest.run{i:02d}"
            flow = run(
                [sys.executable, str(APPS / "decision_flow.py")], {**flow_env, "DECISION_FLOW_TYPE": decision_type}
            )
            assert flow.returncode == 0, f"run {i}: {flow.stdout}{flow.stderr}"
            assert f"RECORDED {K} " in flow.stdout, flow.stdout
            assert not bad_lines(flow.stdout + flow.stderr), f"run {i}: {bad_lines(flow.stdout + flow.stderr)}"
            query = run(cli_args("query", "run", "decision_volume_daily", "--dsn", dsn, "--format", "json"), env)
            assert query.returncode == 0, query.stdout + query.stderr
            assert not bad_lines(query.stdout + query.stderr)
            counts = volume_by_type(query)
            assert counts.get(decision_type) == K, f"run {i}: {counts}"
            assert counts == {f"flowtest.run{j:02d}": K for j in range(i + 1)}, f"run {i}: {counts}"
            flow_walls.append(flow.wall_s)
            query_walls.append(query.wall_s)
            print(f"\nrun {i:02d}: flow process {flow.wall_s:.2f} s, query {query.wall_s:.2f} s", flush=True)
        measured("flow_run_process_wall_mean_s", statistics.mean(flow_walls), f"s over {RUNS} runs (K={K})")
        measured("flow_run_process_wall_max_s", max(flow_walls))
        measured("flow_run_process_wall_min_s", min(flow_walls))
        measured("flow_run_process_wall_mean_after_first_s", statistics.mean(flow_walls[1:]))
        measured("query_after_run_wall_mean_s", statistics.mean(query_walls))
        measured("query_after_run_wall_max_s", max(query_walls))
        reader = get_client(dsn, role="reader")
        try:
            total, distinct, runs = reader.query(
                "SELECT count(decision_id), uniqExact(decision_id), uniqExact(flow_run_id) FROM decisions FINAL"
            ).result_rows[0]
        finally:
            reader.close()
        assert total == distinct == RUNS * K
        assert runs == RUNS
        owners = _owner_pids(store)
        assert len(owners) == 1, owners  # the first flow run started it; the others were its clients
    finally:
        stop_process(server, grace_s=10)
        embedded.stop_server(store)
    assert not _owner_pids(store)
