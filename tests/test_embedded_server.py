"""The embedded database's owner process, in real processes, over real HTTP and native TCP.

:mod:`otel_decisions.store.embedded` serves a chDB data directory with ClickHouse's own HTTP and
native TCP listeners from one owner process; every other process is a client. These tests start
real owners (``python -P embedded.py serve-owner DIR``, ``ensure_server`` and ``otel-decisions
serve``) and talk to them with clickhouse-connect (HTTP) and clickhouse-driver (native TCP):

- the private chDB binding it relies on is pinned and still serves (fails loudly otherwise);
- concurrent starters make one owner; a SIGKILLed owner's stale endpoint is replaced, data kept;
- SIGTERM / SIGINT end the owner through its normal cleanup despite idle keep-alive, in-flight
  and native connections; idleness ends it; a listener stopped behind its back is detected;
- ``otel-decisions serve``: loopback unless --allow-remote with every password, given ports;
- the users' rights on the project's own store (schema applied by the writer path): the writer
  and reader cannot destroy decisions or reach files, URLs, programs or other servers; a wrong
  password and the passwordless ``default`` user get nothing; the writer's spans reach
  ``decisions`` through the materialized view; credentials are private.

Error checks read ClickHouse's numeric code (``exc.code``), never the message text.
Measurements are printed as ``MEASURED name = value`` (run pytest with ``-s`` to see them).
"""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.exceptions import Error as HttpError
from clickhouse_driver import Client as TcpClient  # type: ignore[import-untyped]
from clickhouse_driver import errors as tcp_errors

from otel_decisions.errors import StoreError
from otel_decisions.store import embedded
from otel_decisions.store.client import get_client

REPO = Path(__file__).resolve().parent.parent
APPS = Path(__file__).resolve().parent / "apps"

ACCESS_DENIED = 497
AUTHENTICATION_FAILED = 516


# ----------------------------------------------------------------------------- helpers
def measured(name: str, value: float, unit: str = "s") -> None:
    print(f"\nMEASURED {name} = {value:.4f} {unit}", flush=True)


def owner_pids(data_dir: Path) -> list[int]:
    """PIDs of live owner processes serving ``data_dir`` (scans /proc command lines)."""
    wanted = str(Path(data_dir).resolve()).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"serve-owner" in argv and wanted in argv and embedded._pid_alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def log_tail(data_dir: Path) -> str:
    log = Path(data_dir) / embedded.LOG_FILE
    return log.read_text(errors="replace")[-3000:] if log.exists() else "(no owner log)"


def wait_endpoint(
    data_dir: Path, timeout_s: float = 30.0, process: subprocess.Popen[Any] | None = None
) -> embedded.Endpoint:
    deadline = time.monotonic() + timeout_s
    while (endpoint := embedded.read_endpoint(data_dir)) is None:
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the owner exited with {process.returncode} before publishing")
        assert time.monotonic() < deadline, f"no endpoint in {timeout_s} s: {log_tail(data_dir)}"
        time.sleep(0.02)
    return endpoint


def wait_gone(pid: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while embedded._pid_alive(pid):
        assert time.monotonic() < deadline, f"process {pid} still alive after {timeout_s} s"
        time.sleep(0.02)


def stop_and_wait(data_dir: Path) -> None:
    endpoint = embedded.read_endpoint(data_dir)
    assert embedded.stop_server(data_dir, timeout_s=20), log_tail(data_dir)
    assert not owner_pids(data_dir)
    if endpoint is not None:
        assert not embedded._pid_alive(endpoint.pid)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def exit_marker(data_dir: Path) -> dict[str, Any]:
    return json.loads((Path(data_dir) / embedded.EXIT_MARKER_FILE).read_text())


def http_code(client: Any, sql: str) -> int | None:
    """None if ``sql`` succeeds over HTTP, else ClickHouse's error code (-1 if the error has none)."""
    try:
        client.command(sql)
    except HttpError as error:
        return error.code if error.code is not None else -1
    return None


def tcp_code(client: TcpClient, sql: str) -> int | None:
    """None if ``sql`` succeeds over native TCP, else ClickHouse's error code (-1 if none)."""
    try:
        client.execute(sql)
    except tcp_errors.Error as error:
        code = getattr(error, "code", None)
        return code if isinstance(code, int) else -1
    return None


def tcp_client(
    endpoint: embedded.Endpoint, role: str | None = None, *, user: str = "", password: str = ""
) -> TcpClient:
    if role is not None:
        user, password = endpoint.users[role]
    return TcpClient(
        host=endpoint.host,
        port=endpoint.tcp_port,
        user=user,
        password=password,
        connect_timeout=5,
        send_receive_timeout=60,
    )


def default_http(endpoint: embedded.Endpoint) -> Any:
    return clickhouse_connect.get_client(host=endpoint.host, port=endpoint.http_port, username="default", password="")


def owner_process(data_dir: Path, *args: str) -> subprocess.Popen[str]:
    """An owner started the way ``ensure_server`` starts one, but attached (stderr piped)."""
    return subprocess.Popen(
        [*embedded.default_owner_command(), "serve-owner", str(data_dir), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
        env={**os.environ, "TZ": "UTC"},
        start_new_session=True,
    )


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_DECISIONS_")}
    env.update({"PYTHONPATH": str(REPO), "COLUMNS": "200", "TZ": "UTC", **extra})
    return env


def cli(*args: str, env: dict[str, str] | None = None, **popen: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "otel_decisions.cli", *args],
        cwd=REPO,
        env=env or cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


SLOW_QUERY = (
    "SELECT sum(sleepEachRow(0.5)) FROM numbers(60) "
    "SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 0"
)


# ----------------------------------------------------------------------------- the private binding
def test_pinned_private_binding(tmp_path: Path) -> None:
    """``chdb._chdb.query`` + ``SYSTEM START LISTEN`` is private to chDB: pinned, and checked to serve.

    If a chDB release changes any of this, this test fails and the embedded owner needs a new look.
    """
    assert metadata.version("chdb") == "4.4.0", "chdb is pinned exactly: _chdb.query is a private binding"
    assert metadata.version("chdb-core") == "26.9.0", "chdb-core is pinned exactly: LocalServer's listeners"
    from chdb import _chdb

    assert callable(getattr(_chdb, "query", None)), "chdb._chdb.query is gone"

    http_port, tcp_port = free_port(), free_port()
    started = time.monotonic()
    probe = subprocess.Popen(
        [sys.executable, str(APPS / "raw_chdb_listen.py"), str(tmp_path / "raw"), str(http_port), str(tcp_port)],
        cwd=tmp_path,
        env={**os.environ, "TZ": "UTC"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not embedded._ping("127.0.0.1", http_port, 0.5):
            assert probe.poll() is None, f"the bare binding exited: {probe.communicate()}"
            assert time.monotonic() < deadline, "SYSTEM START LISTEN through _chdb.query opened no HTTP port"
            time.sleep(0.02)
        measured("raw_binding_listeners_up_s", time.monotonic() - started)

        def http(sql: str) -> str:
            request = urllib.request.Request(
                f"http://127.0.0.1:{http_port}/", data=sql.encode(), headers={"Connection": "close"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.read().decode()

        # the data directory is really served: DDL and rows over HTTP, read back over native TCP
        http("CREATE TABLE probe (x UInt32) ENGINE = MergeTree ORDER BY x")
        http("INSERT INTO probe VALUES (1), (2), (3)")
        native = TcpClient(host="127.0.0.1", port=tcp_port, connect_timeout=5)
        try:
            assert native.execute("SELECT sum(x), count() FROM probe") == [(6, 3)]
            assert native.execute("SELECT version()")[0][0].startswith("26.9.")
        finally:
            native.disconnect()
        assert http("SELECT count() FROM probe").strip() == "3"  # fmt "TSV" is the HTTP default format
        http("KILL QUERY WHERE Settings['log_comment'] = 'raw-binding-probe' SYNC")
        out, err = probe.communicate(timeout=30)
    finally:
        if probe.poll() is None:
            os.killpg(probe.pid, signal.SIGKILL)
            probe.wait()
    assert probe.returncode == 0, err
    assert out.splitlines()[0] == "STARTED"
    assert out.splitlines()[-1].startswith("ENDED") and "error" not in out.splitlines()[-1], out
    assert not embedded._ping("127.0.0.1", http_port, 0.5)  # the listeners ended with the call


# ----------------------------------------------------------------------------- starting, stale owners
WORKER = r"""
import json, sys, time
from pathlib import Path
from otel_decisions.store import embedded as es
data_dir, counter, worker = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
command = ["sh", "-c", f'echo spawn >> {counter}; exec "$0" "$@"', *es.default_owner_command()]
print("ready", flush=True)
sys.stdin.readline()  # "go": every worker has imported everything by then
t0 = time.monotonic()
ep = es.ensure_server(data_dir, idle_exit_s=None, owner_command=command)
elapsed = time.monotonic() - t0
admin = ep.client("admin")
admin.command("CREATE TABLE IF NOT EXISTS otel.rows (worker UInt32, n UInt32) ENGINE = MergeTree ORDER BY (worker, n)")
ep.client("admin").insert("otel.rows", [[worker, n] for n in range(1000)], column_names=["worker", "n"])
print(json.dumps({"pid": ep.pid, "start_id": ep.start_id, "elapsed": elapsed}))
"""


def test_four_concurrent_starters_make_one_owner(tmp_path: Path) -> None:
    data_dir = tmp_path / "db"
    counter = tmp_path / "spawns"
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(data_dir), str(counter), str(i)],
            cwd=REPO,
            env=cli_env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    try:
        for worker in workers:
            assert worker.stdout is not None and worker.stdout.readline().strip() == "ready"
        for worker in workers:
            assert worker.stdin is not None
            worker.stdin.write("go\n")
            worker.stdin.flush()
        results = [json.loads(worker.communicate(timeout=90)[0].strip().splitlines()[-1]) for worker in workers]
        assert [worker.returncode for worker in workers] == [0, 0, 0, 0]
        assert len({(r["pid"], r["start_id"]) for r in results}) == 1, results
        assert owner_pids(data_dir) == [results[0]["pid"]]
        spawns = len(counter.read_text().split())
        measured("concurrent_ensure_server_max_s", max(r["elapsed"] for r in results))
        measured("concurrent_ensure_server_min_s", min(r["elapsed"] for r in results))
        measured("concurrent_owner_spawns", spawns, "owners started (losers exit 73)")
        assert 1 <= spawns <= 8  # ensure_server gives up after 8 owners that did not publish
        endpoint = wait_endpoint(data_dir)
        reader = endpoint.client("reader")
        assert reader.command("SELECT count() FROM otel.rows") == 4000
        assert reader.command("SELECT uniqExact(worker) FROM otel.rows") == 4
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        stop_and_wait(data_dir)


def test_sigkilled_owner_is_replaced_and_data_persists(tmp_path: Path) -> None:
    first = embedded.ensure_server(tmp_path, idle_exit_s=None)
    try:
        first.client("admin").command("CREATE TABLE otel.k (x UInt8) ENGINE = MergeTree ORDER BY x")
        first.client("admin").insert("otel.k", [[1], [2], [3]], column_names=["x"])
        os.kill(first.pid, signal.SIGKILL)
        wait_gone(first.pid, 10)
        assert (tmp_path / embedded.ENDPOINT_FILE).exists()  # stale: nobody unpublished it
        assert embedded.read_endpoint(tmp_path) is None
        started = time.monotonic()
        second = embedded.ensure_server(tmp_path, idle_exit_s=None)
        measured("ensure_server_after_sigkill_s", time.monotonic() - started)
        assert (second.pid, second.start_id) != (first.pid, first.start_id)
        assert json.loads((tmp_path / embedded.ENDPOINT_FILE).read_text())["pid"] == second.pid
        assert second.users == first.users  # credentials.json survives
        assert second.client("reader").command("SELECT sum(x) FROM otel.k") == 6
        native = tcp_client(second, "reader")
        try:
            assert native.execute("SELECT sum(x) FROM otel.k") == [(6,)]
        finally:
            native.disconnect()
        assert owner_pids(tmp_path) == [second.pid]
    finally:
        stop_and_wait(tmp_path)


def test_cold_and_warm_ensure_server_and_insert_throughput(tmp_path: Path) -> None:
    started = time.monotonic()
    endpoint = embedded.ensure_server(tmp_path, idle_exit_s=None)
    measured("cold_ensure_server_s", time.monotonic() - started)
    try:
        for line in log_tail(tmp_path).splitlines():
            if "up in" in line:
                measured("owner_listeners_up_s", float(line.rsplit("up in", 1)[1].split()[0]))
        started = time.monotonic()
        for _ in range(50):
            assert embedded.ensure_server(tmp_path).pid == endpoint.pid
        measured("warm_ensure_server_s", (time.monotonic() - started) / 50)
        endpoint.client("admin").command(
            "CREATE TABLE otel.wide (ts DateTime64(9), trace_id String, span_id String, "
            "name LowCardinality(String), dur UInt64, code Int32, ok UInt8, score Float64, "
            "attrs Map(LowCardinality(String), String), note String) ENGINE = MergeTree ORDER BY (name, ts)"
        )
        columns = ["ts", "trace_id", "span_id", "name", "dur", "code", "ok", "score", "attrs", "note"]
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        batch = [
            [
                now + datetime.timedelta(microseconds=i),
                f"{i:032x}",
                f"{i:016x}",
                f"op{i % 10}",
                i * 7,
                i % 5,
                i % 2,
                i / 3,
                {"k": str(i), "service": "svc"},
                "x" * 40,
            ]
            for i in range(10_000)
        ]
        writer = endpoint.client("admin")  # an ad-hoc table: the writer role may insert spans only
        started = time.monotonic()
        for _ in range(10):
            writer.insert("otel.wide", batch, column_names=columns)
        elapsed = time.monotonic() - started
        measured("insert_100k_rows_http_s", elapsed)
        native = tcp_client(endpoint, "admin")
        try:
            started = time.monotonic()
            for _ in range(10):
                native.execute(f"INSERT INTO otel.wide ({', '.join(columns)}) VALUES", batch)
            measured("insert_100k_rows_native_tcp_s", time.monotonic() - started)
        finally:
            native.disconnect()
        assert endpoint.client("reader").command("SELECT count() FROM otel.wide") == 200_000
    finally:
        stop_and_wait(tmp_path)


def test_idle_owner_exits_by_itself(tmp_path: Path) -> None:
    endpoint = embedded.ensure_server(tmp_path, idle_exit_s=1.5)
    reader = endpoint.client("reader")
    for _ in range(6):  # 3 s of activity keep it alive
        assert reader.command("SELECT 1") == 1
        time.sleep(0.5)
    assert embedded.read_endpoint(tmp_path) is not None
    started = time.monotonic()
    wait_gone(endpoint.pid, 10)
    measured("idle_exit_after_last_query_s", time.monotonic() - started, "s (idle_exit_s=1.5)")
    marker = exit_marker(tmp_path)
    assert marker["clean"] is True and marker["reason"].startswith("idle") and marker["exit_code"] == 0


def test_run_owner_refuses_an_owned_directory(tmp_path: Path) -> None:
    endpoint = embedded.ensure_server(tmp_path, idle_exit_s=None)
    try:
        assert embedded.run_owner(tmp_path) == embedded.EXIT_ALREADY_OWNED
        started = time.monotonic()
        second = subprocess.run(
            [*embedded.default_owner_command(), "serve-owner", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
        )
        measured("second_owner_exit_73_s", time.monotonic() - started)
        assert second.returncode == embedded.EXIT_ALREADY_OWNED, second.stderr
        again = cli("serve", "--dsn", f"chdb://{tmp_path}", "--http-port", "0", "--tcp-port", "0")
        out, err = again.communicate(timeout=60)
        assert again.returncode == StoreError.exit_code, out + err
        assert str(endpoint.pid) in err  # "already served by process PID"
        assert embedded.read_endpoint(tmp_path) == endpoint  # the running owner is untouched
    finally:
        stop_and_wait(tmp_path)


def test_reader_never_creates_a_store(tmp_path: Path) -> None:
    from otel_decisions.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError):
        get_client(f"chdb://{tmp_path / 'nothing'}", role="reader")
    assert not (tmp_path / "nothing").exists()
    assert not owner_pids(tmp_path / "nothing")


def test_remote_listen_requires_explicit_passwords(tmp_path: Path) -> None:
    with pytest.raises(embedded.ConfigError) as caught:
        embedded.ensure_server(tmp_path / "a", host="0.0.0.0", passwords={"admin": "a" * 20})
    assert caught.value.field == "passwords.writer"
    with pytest.raises(embedded.ConfigError) as caught:
        embedded.run_owner(tmp_path / "a", host="0.0.0.0")
    assert caught.value.field == "passwords.admin"
    with pytest.raises(embedded.ConfigError) as caught:
        embedded.ensure_server(tmp_path / "a", database="otel; DROP")
    assert caught.value.field == "database"
    assert not (tmp_path / "a").exists()


def test_taken_port_fails_fast_and_a_broken_owner_is_reported(tmp_path: Path) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        started = time.monotonic()
        done = subprocess.run(
            [
                *embedded.default_owner_command(),
                "serve-owner",
                str(tmp_path / "a"),
                "--http-port",
                str(squatter.getsockname()[1]),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd="/",
        )
        elapsed = time.monotonic() - started
    measured("taken_port_owner_exit_s", elapsed)
    assert done.returncode == embedded.EXIT_START_FAILED, done.stderr
    assert elapsed < 20
    marker = exit_marker(tmp_path / "a")
    assert marker["clean"] is True and marker["reason"].startswith("listeners did not come up")
    with pytest.raises(embedded.ServerStartError, match="exited with status 3"):
        embedded.ensure_server(
            tmp_path / "b", timeout_s=10, owner_command=[sys.executable, "-c", "import sys; sys.exit(3)"]
        )


# ----------------------------------------------------------------------------- stopping
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_cleanly_with_open_connections(tmp_path: Path, signum: int) -> None:
    """An idle keep-alive HTTP client, an in-flight slow query and an open native TCP connection."""
    owner = owner_process(tmp_path)
    native: TcpClient | None = None
    try:
        endpoint = wait_endpoint(tmp_path, process=owner)
        assert endpoint.pid == owner.pid
        idle = endpoint.client("reader")  # its keep-alive pool connection stays open, idle
        assert idle.command("SELECT 1") == 1
        native = tcp_client(endpoint, "reader")
        assert native.execute("SELECT 1") == [(1,)]  # the native connection stays open
        slow_error: list[BaseException] = []

        def slow_query() -> None:
            try:
                endpoint.client("reader").command(SLOW_QUERY)
            except BaseException as error:  # noqa: BLE001 - recorded for the assertion
                slow_error.append(error)

        slow = threading.Thread(target=slow_query)
        slow.start()
        admin = endpoint.client("admin")
        deadline = time.monotonic() + 10
        while (
            admin.command(
                "SELECT count() FROM system.processes WHERE query LIKE '%sleepEachRow(0.5)%' "
                "AND query NOT LIKE '%system.processes%'"
            )
            != 1
        ):
            assert time.monotonic() < deadline, "the slow query never started"
            time.sleep(0.05)
        admin.close()
        started = time.monotonic()
        owner.send_signal(signum)
        _, stderr = owner.communicate(timeout=30)
        elapsed = time.monotonic() - started
        measured(f"stop_{signal.Signals(signum).name}_with_open_connections_s", elapsed)
        slow.join(15)
        assert owner.returncode == 0, stderr
        marker = exit_marker(tmp_path)
        assert marker == {
            **marker,
            "clean": True,
            "reason": signal.Signals(signum).name,
            "exit_code": 0,
            "start_id": endpoint.start_id,
            "pid": owner.pid,
        }
        assert "stopped (" in stderr  # the normal cleanup path logged its last line
        assert not (tmp_path / embedded.ENDPOINT_FILE).exists()
        assert slow_error, "the in-flight query must have been ended by the stop"
        assert elapsed < 10, stderr  # generous: measured well under a second
    finally:
        if native is not None:
            native.disconnect()
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait()


def test_sigterm_while_clients_keep_sending_slow_queries(tmp_path: Path) -> None:
    """Queries accepted after the owner's last KILL are ended by the engine's own stop chain."""
    owner = owner_process(tmp_path)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    try:
        endpoint = wait_endpoint(tmp_path, process=owner)

        def hammer() -> None:
            while not stop.is_set():
                try:
                    endpoint.client("reader", connect_timeout=1).command(SLOW_QUERY)
                except Exception:  # noqa: BLE001 - killed or refused, as expected
                    time.sleep(0.01)

        def hammer_native() -> None:
            while not stop.is_set():
                client = tcp_client(endpoint, "reader")
                try:
                    client.execute(SLOW_QUERY)
                except Exception:  # noqa: BLE001 - killed or refused, as expected
                    time.sleep(0.01)
                finally:
                    client.disconnect()

        threads = [threading.Thread(target=hammer) for _ in range(2)] + [threading.Thread(target=hammer_native)]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        started = time.monotonic()
        owner.send_signal(signal.SIGTERM)
        _, stderr = owner.communicate(timeout=30)
        elapsed = time.monotonic() - started
        measured("stop_under_query_storm_s", elapsed)
        assert owner.returncode == 0, stderr
        assert exit_marker(tmp_path)["clean"] is True
        assert elapsed < 10, stderr
    finally:
        stop.set()
        for thread in threads:
            thread.join(15)
        if owner.poll() is None:
            os.killpg(owner.pid, signal.SIGKILL)
            owner.wait()


def test_default_stop_listen_is_detected_and_recovered(tmp_path: Path) -> None:
    """The one thing passwordless ``default`` can still do (from loopback): stop the listeners."""
    first = embedded.ensure_server(tmp_path, idle_exit_s=None)
    try:
        first.client("admin").command("CREATE TABLE otel.d (x UInt8) ENGINE = MergeTree ORDER BY x")
        first.client("admin").insert("otel.d", [[7]], column_names=["x"])
        default = default_http(first)
        started = time.monotonic()
        try:
            default.command("SYSTEM STOP LISTEN QUERIES ALL")
        except Exception:  # noqa: BLE001 - the answer may be cut
            pass
        wait_gone(first.pid, 15)
        measured("stop_listen_dos_detected_s", time.monotonic() - started)
        marker = exit_marker(tmp_path)
        assert marker["clean"] is False and marker["exit_code"] == embedded.EXIT_UNSTOPPABLE
        assert marker["reason"].startswith("listeners lost")
        second = embedded.ensure_server(tmp_path, idle_exit_s=None)
        assert second.client("reader").command("SELECT sum(x) FROM otel.d") == 7
    finally:
        if embedded.read_endpoint(tmp_path) is not None:
            stop_and_wait(tmp_path)


# ----------------------------------------------------------------------------- otel-decisions serve
def test_serve_refuses_a_non_loopback_host_without_allow_remote(tmp_path: Path) -> None:
    store = tmp_path / "store"
    refused = cli("serve", "--host", "0.0.0.0", "--dsn", f"chdb://{store}")
    out, err = refused.communicate(timeout=60)
    assert refused.returncode == 2, out + err
    assert "--host" in err and "--allow-remote" in err
    no_passwords = cli("serve", "--host", "0.0.0.0", "--allow-remote", "--dsn", f"chdb://{store}")
    out, err = no_passwords.communicate(timeout=60)
    assert no_passwords.returncode == 2, out + err
    assert "passwords.admin" in err or "OTEL_DECISIONS_EMBEDDED_ADMIN_PASSWORD" in err, err
    assert "Traceback" not in out + err
    assert not store.exists() and not owner_pids(store)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_serve_in_the_foreground_on_given_ports(tmp_path: Path, signum: int) -> None:
    store = tmp_path / "store"
    http_port, tcp_port = free_port(), free_port()
    started = time.monotonic()
    serve = cli(
        "serve",
        "--dsn",
        f"chdb://{store}",
        "--http-port",
        str(http_port),
        "--tcp-port",
        str(tcp_port),
        start_new_session=True,
    )
    native: TcpClient | None = None
    try:
        endpoint = wait_endpoint(store, 60, process=serve)
        measured("serve_cli_up_s", time.monotonic() - started)
        assert endpoint.pid == serve.pid  # the CLI process itself owns the directory
        assert (endpoint.http_port, endpoint.tcp_port) == (http_port, tcp_port)
        reader = get_client(f"chdb://{store}", role="reader")
        assert reader.command("SELECT 1") == 1
        reader.close()
        native = tcp_client(endpoint, "reader")
        assert native.execute("SELECT currentUser()") == [("otel_reader",)]
        assert owner_pids(store) == []  # no detached owner: `serve` is the owner
        started = time.monotonic()
        serve.send_signal(signum)
        out, err = serve.communicate(timeout=30)
        measured(f"serve_cli_stop_{signal.Signals(signum).name}_s", time.monotonic() - started)
    finally:
        if native is not None:
            native.disconnect()
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert serve.returncode == 0, out + err
    assert f"http://127.0.0.1:{http_port}" in out and f"tcp://127.0.0.1:{tcp_port}" in out
    assert "Traceback" not in out + err
    marker = exit_marker(store)
    assert marker["clean"] is True and marker["reason"] == signal.Signals(signum).name
    assert not (store / embedded.ENDPOINT_FILE).exists()


def test_serve_allow_remote_with_every_password_from_the_environment(tmp_path: Path) -> None:
    store = tmp_path / "store"
    passwords = {role: f"{role}-explicit-{os.urandom(6).hex()}" for role in embedded.ROLES}
    env = cli_env(**{f"OTEL_DECISIONS_EMBEDDED_{role.upper()}_PASSWORD": pw for role, pw in passwords.items()})
    serve = cli(
        "serve",
        "--host",
        "0.0.0.0",
        "--allow-remote",
        "--dsn",
        f"chdb://{store}",
        "--http-port",
        "0",
        "--tcp-port",
        "0",
        env=env,
        start_new_session=True,
    )
    try:
        endpoint = wait_endpoint(store, 60, process=serve)
        assert json.loads((store / embedded.ENDPOINT_FILE).read_text())["listen_host"] == "0.0.0.0"
        assert endpoint.host == "127.0.0.1"
        assert endpoint.users == {role: (embedded.USER_NAMES[role], passwords[role]) for role in embedded.ROLES}
        reader = clickhouse_connect.get_client(
            host="127.0.0.1", port=endpoint.http_port, username="otel_reader", password=passwords["reader"]
        )
        assert reader.command("SELECT currentUser()") == "otel_reader"
        with pytest.raises(HttpError) as caught:
            clickhouse_connect.get_client(
                host="127.0.0.1", port=endpoint.http_port, username="otel_reader", password="generated-or-guessed"
            )
        assert caught.value.code == AUTHENTICATION_FAILED
        serve.send_signal(signal.SIGTERM)
        out, err = serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert serve.returncode == 0, out + err
    assert exit_marker(store)["clean"] is True


def test_serve_has_the_schema_ready_for_a_collector(tmp_path: Path) -> None:
    store = tmp_path / "store"
    serve = cli("serve", "--dsn", f"chdb://{store}", "--http-port", "0", "--tcp-port", "0", start_new_session=True)
    try:
        endpoint = wait_endpoint(store, 60, process=serve)
        admin = endpoint.client("admin")
        exists = admin.command("EXISTS TABLE otel.otel_traces")
        admin.close()
        serve.send_signal(signal.SIGTERM)
        serve.communicate(timeout=30)
    finally:
        if serve.poll() is None:
            os.killpg(serve.pid, signal.SIGKILL)
            serve.wait()
    assert exists == 1


# ----------------------------------------------------------------------------- security on the store
@dataclass
class Store:
    dsn: str
    data_dir: Path
    endpoint: embedded.Endpoint
    decisions: int
    leak: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """The project's store: schema applied by the writer path, decisions written by the writer."""
    from otel_decisions.store.exporter import ClickHouseSpanExporter
    from tests.seed import seed_decisions

    base = tmp_path_factory.mktemp("secure")
    data_dir = base / "store"  # created by the owner (mode 0700)
    dsn = f"chdb://{data_dir}"
    endpoint = embedded.ensure_server(data_dir, idle_exit_s=None)
    try:
        get_client(dsn, role="writer").close()  # applies the schema as admin, then logs in as writer
        exporter = ClickHouseSpanExporter(dsn)
        data = seed_decisions(exporter, n=30, seed=11, redeliver=5)
        exporter.shutdown()
        yield Store(dsn, data_dir, endpoint, len(data.decisions), base / "leak.csv")
    finally:
        stop_and_wait(data_dir)


FORBIDDEN = [
    "DROP TABLE otel.otel_traces",
    "DROP TABLE otel.decisions",
    "DROP VIEW otel.decisions_mv",
    "ALTER TABLE otel.decisions ADD COLUMN x UInt8",
    "ALTER TABLE otel.otel_traces DELETE WHERE 1",
    "ALTER TABLE otel.decisions UPDATE outcome = 'approve' WHERE 1",
    "DELETE FROM otel.decisions WHERE 1",
    "DELETE FROM otel.otel_traces WHERE 1",
    "TRUNCATE TABLE otel.otel_traces",
    "TRUNCATE TABLE otel.decisions",
    "SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "SELECT * FROM `/etc/hostname`",  # clickhouse-local's filesystem-backed default database
    "SELECT * FROM default.`/etc/hostname`",
    "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
    "SELECT * FROM executable('true', 'LineAsString', 'x String')",
    "SELECT * FROM remote('127.0.0.1:1', system.one)",
    "INSERT INTO FUNCTION file('{leak}', 'CSV', 'x UInt8') VALUES (1)",
    "CREATE TABLE otel.leak (x UInt8) ENGINE = File(CSV)",
    "CREATE TEMPORARY TABLE tmp (x UInt8)",
    "SELECT * FROM system.users",
    "SELECT * FROM system.processes",
    "KILL QUERY WHERE 1",
    "SYSTEM STOP LISTEN HTTP",
]


def assert_store_intact(store: Store) -> None:
    reader = get_client(store.dsn, role="reader")
    try:
        tables = set(reader.command("SHOW TABLES").split("\n"))
        assert {"otel_traces", "decisions", "decisions_mv", "decision_reviews"} <= tables
        assert reader.command("SELECT count() FROM decisions FINAL") == store.decisions
        columns = reader.query("SELECT name FROM system.columns WHERE database = 'otel' AND table = 'decisions'")
        assert "leak" not in tables and "x" not in {row[0] for row in columns.result_rows}
    finally:
        reader.close()
    assert not store.leak.exists()
    assert embedded.read_endpoint(store.data_dir) == store.endpoint  # still served by the same owner


@pytest.mark.parametrize("transport", ["http", "tcp"])
@pytest.mark.parametrize("role", ["writer", "reader"])
def test_data_users_cannot_destroy_decisions_or_escape(store: Store, role: str, transport: str) -> None:
    statements = [sql.replace("{leak}", str(store.leak)) for sql in FORBIDDEN]
    if transport == "http":
        client = store.endpoint.client(role)  # no database: `/etc/hostname` resolves in the filesystem one
        codes = {sql: http_code(client, sql) for sql in statements}
        client.close()
    else:
        native = tcp_client(store.endpoint, role)
        try:
            codes = {sql: tcp_code(native, sql) for sql in statements}
        finally:
            native.disconnect()
    assert codes == dict.fromkeys(statements, ACCESS_DENIED)
    assert_store_intact(store)


def test_writer_inserts_spans_that_reach_decisions_through_the_view(store: Store) -> None:
    """The seed went in as otel_writer (INSERT only); decisions_mv runs as its definer."""
    reader = get_client(store.dsn, role="reader")
    writer = get_client(store.dsn, role="writer")
    native = tcp_client(store.endpoint, "writer")
    try:
        assert writer.command("SELECT currentUser()") == "otel_writer"
        assert reader.command("SELECT count() FROM decisions FINAL") == store.decisions == 30
        assert reader.command("SELECT uniqExact(decision_id) FROM decisions") == 30
        assert reader.command("SELECT count() FROM otel_traces WHERE startsWith(SpanName, 'decision ')") == 35
        assert http_code(writer, "SELECT count() FROM decisions") == ACCESS_DENIED
        assert http_code(writer, "SELECT count() FROM otel_traces") == ACCESS_DENIED
        assert tcp_code(native, "SELECT count() FROM otel.decisions") == ACCESS_DENIED
        assert http_code(reader, "INSERT INTO otel_traces (SpanName) VALUES ('decision x')") == ACCESS_DENIED
        # one more decision span, written over native TCP as otel_writer: the view delivers it
        decision_id = "0d0d0d0d-0000-4000-8000-00000000beef"
        native.execute(
            "INSERT INTO otel.otel_traces (Timestamp, TraceId, SpanId, SpanName, ServiceName, SpanAttributes) VALUES",
            [
                (
                    datetime.datetime(2026, 3, 1, 12, 0, 0),
                    "ab" * 16,
                    "cd" * 8,
                    "decision tcp.test",
                    "tcp-writer",
                    {"decision.id": decision_id, "decision.type": "tcp.test", "decision.outcome": "approve"},
                )
            ],
        )
        rows = reader.query(
            "SELECT decision_type, outcome FROM decisions FINAL WHERE decision_id = {id:String}",
            parameters={"id": decision_id},
        ).result_rows
        assert rows == [("tcp.test", "approve")]
        store.decisions += 1
    finally:
        native.disconnect()
        reader.close()
        writer.close()


@pytest.mark.parametrize("transport", ["http", "tcp"])
def test_wrong_password_is_refused(store: Store, transport: str) -> None:
    for role in embedded.ROLES:
        user, _ = store.endpoint.users[role]
        if transport == "http":
            with pytest.raises(HttpError) as caught:
                clickhouse_connect.get_client(
                    host=store.endpoint.host, port=store.endpoint.http_port, username=user, password="wrong"
                )
            assert caught.value.code == AUTHENTICATION_FAILED, role
        else:
            native = tcp_client(store.endpoint, user=user, password="wrong")
            try:
                assert tcp_code(native, "SELECT 1") == AUTHENTICATION_FAILED, role
            finally:
                native.disconnect()


DEFAULT_USER_FORBIDDEN = [
    "SELECT count() FROM otel.decisions",
    "SELECT count() FROM otel.otel_traces",
    "SELECT * FROM otel.decisions LIMIT 1",
    "INSERT INTO otel.otel_traces (SpanName) VALUES ('decision x')",
    "INSERT INTO otel.decisions (decision_id) VALUES ('x')",
    "DROP TABLE otel.decisions",
    "SELECT * FROM file('/etc/hostname', 'LineAsString')",
    "SELECT * FROM `/etc/hostname`",
    "SELECT * FROM system.row_policies",
]


@pytest.mark.parametrize("transport", ["http", "tcp"])
def test_passwordless_default_user_gets_no_decision_data(store: Store, transport: str) -> None:
    if transport == "http":
        client = default_http(store.endpoint)
        codes = {sql: http_code(client, sql) for sql in DEFAULT_USER_FORBIDDEN}
        grants = sorted(client.command("SHOW GRANTS").splitlines())
        databases = client.command("SHOW DATABASES")
        client.close()
    else:
        native = tcp_client(store.endpoint, user="default", password="")
        try:
            codes = {sql: tcp_code(native, sql) for sql in DEFAULT_USER_FORBIDDEN}
            grants = sorted(row[0] for row in native.execute("SHOW GRANTS"))
            databases = "\n".join(row[0] for row in native.execute("SHOW DATABASES"))
        finally:
            native.disconnect()
    assert codes == dict.fromkeys(DEFAULT_USER_FORBIDDEN, ACCESS_DENIED)
    assert grants == [
        "GRANT KILL QUERY, SYSTEM FLUSH LOGS, SYSTEM LISTEN ON *.* TO default",
        "GRANT SELECT ON system.numbers TO default",
        "GRANT SELECT ON system.processes TO default",
    ]
    assert "otel" not in databases.split()
    assert_store_intact(store)


def test_default_user_can_neither_see_nor_kill_queries(store: Store) -> None:
    """system.processes is filtered on the owner's per-start secret: empty for a `default` client."""
    admin = store.endpoint.client("admin")
    default = default_http(store.endpoint)
    try:
        assert admin.command("SELECT count() FROM system.processes") >= 1  # the owner's blocking statement
        assert default.command("SELECT count() FROM system.processes") == 0
        assert default.command("SELECT count() FROM system.processes SETTINGS log_comment = 'guess'") == 0
        default.command("KILL QUERY WHERE 1 SYNC")
        assert embedded.read_endpoint(store.data_dir) == store.endpoint  # the blocking statement survived
        assert default.command("SELECT 1") == 1
    finally:
        admin.close()
        default.close()


def test_credentials_and_published_files_are_private(store: Store) -> None:
    for name in (embedded.CREDENTIALS_FILE, embedded.ENDPOINT_FILE, "users.xml", "config.xml", embedded.LOCK_FILE):
        mode = (store.data_dir / name).stat().st_mode & 0o777
        assert mode == 0o600, f"{name}: {oct(mode)}"
    assert (store.data_dir.stat().st_mode & 0o777) == 0o700
    credentials = json.loads((store.data_dir / embedded.CREDENTIALS_FILE).read_text())
    assert {role: entry["user"] for role, entry in credentials.items()} == embedded.USER_NAMES
    assert all(len(entry["password"]) >= 24 for entry in credentials.values())
    users_xml = (store.data_dir / "users.xml").read_text()
    assert not any(entry["password"] in users_xml for entry in credentials.values())  # hashes only
    owner_cmdline = Path(f"/proc/{store.endpoint.pid}/cmdline").read_bytes().decode(errors="replace")
    assert not any(entry["password"] in owner_cmdline for entry in credentials.values())


def test_writer_rows_that_no_span_made_are_found_by_verify(store: Store) -> None:
    """The embedded writer's INSERT covers every otel* table (a database pattern cannot name one table;
    a server's role DDL grants INSERT on otel_traces only): a typed row inserted behind the pipeline's
    back is not a record, and ``verify`` reports it."""
    from otel_decisions.store import schema
    from otel_decisions.verify import verify

    dsn = f"{store.dsn}?database=otel_forgery"  # its own database: a forged row must not touch the others
    writer = get_client(dsn, role="writer")  # applies the schema there
    try:
        writer.command("INSERT INTO decisions (decision_id, outcome) VALUES ('00000000-0000-4000-8000-00000000f0f0', 'approve')")
    finally:
        writer.close()
    report = verify(get_client(dsn, role="reader"))
    assert [p.kind for p in report.problems] == ["altered"] and "decisions row" in report.problems[0].detail
    assert schema.role_ddl("otel")[1:] and "GRANT INSERT ON otel.otel_traces TO otel_writer_role" in schema.role_ddl("otel")
