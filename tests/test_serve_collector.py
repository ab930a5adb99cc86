"""The real collector (``otelcol-decisions``) writing into the served embedded database.

``otel-decisions serve`` owns the embedded database and serves it through ClickHouse's own
native TCP and HTTP listeners; the collector's clickhouse exporter (contrib v0.161.0,
clickhouse-go/v2, the project's ``collector_config/otelcol.yaml``) is a plain ClickHouse client
of them, logged in as one of the engine's users. Every test runs over both doors:
``tcp://127.0.0.1:<tcp_port>`` and ``http://127.0.0.1:<http_port>``.

* ``create_schema: true`` on a fresh database, collector logged in as ``otel_admin`` (it runs
  DDL): ``SHOW CREATE TABLE`` of the tables it makes (and their columns, keys, engines, skip
  indexes) equals what ``otel-decisions schema apply`` makes.
* End to end, collector logged in as ``otel_writer`` (INSERT only; the views run as their
  definer), ``create_schema: false``, database ``otel``: a Prefect flow exports OTLP to the
  collector; the decision lands in the typed ``decisions`` table, a catalogue query run by
  another process (the CLI) while the flow is still running returns it, and ``verify`` (in
  process and ``otel-decisions verify``, with the HMAC key) passes on what was stored.

Skipped, with the reason, when ``scripts/build-binaries`` has not built the collector.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
BIN_DIR = Path(os.environ.get("OTEL_DECISIONS_BIN_DIR", REPO / ".cache" / "bin"))
COLLECTOR = BIN_DIR / "otelcol-decisions"
PROJECT_CONFIG = REPO / "collector_config" / "otelcol.yaml"
CLI = [sys.executable, "-c", "from otel_decisions.cli import main; main()"]
HMAC_KEY = "serve-e2e-key-0123456789abcdef"
COLLECTOR_TABLES = ("otel_traces", "otel_traces_trace_id_ts", "otel_traces_trace_id_ts_mv")
PROTOCOLS = ("tcp", "http")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def _cli_env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_DECISIONS_")}
    env["OTEL_DECISIONS_DATA_DIR"] = str(tmp / "cli-data")  # never the user's data directory
    env.update(extra)
    return env


def cli(tmp: Path, *args: str, timeout_s: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``otel-decisions ARGS`` in a new process."""
    return subprocess.run(  # noqa: S603
        [*CLI, *args], env=_cli_env(tmp, **env), cwd=tmp, capture_output=True, text=True, timeout=timeout_s
    )


class ServedStore:
    """``otel-decisions serve --dsn chdb:///DIR --http-port N --tcp-port M`` in a subprocess."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.dsn = f"chdb://{directory}"
        self.http_port, self.tcp_port = _free_port(), _free_port()
        self.output: list[str] = []
        self.proc: subprocess.Popen[str] | None = None
        self.endpoint: Any = None

    def start(self, timeout_s: float = 60) -> ServedStore:
        from otel_decisions.store import embedded

        self.proc = subprocess.Popen(  # noqa: S603
            [
                *CLI,
                "serve",
                "--dsn",
                self.dsn,
                "--host",
                "127.0.0.1",
                "--http-port",
                str(self.http_port),
                "--tcp-port",
                str(self.tcp_port),
            ],
            env=_cli_env(self.directory.parent, COLUMNS="400"),
            cwd=self.directory.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        threading.Thread(target=self._drain, daemon=True).start()

        def announced() -> Any:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"serve exited {self.proc.returncode}:\n{''.join(self.output)}")
            if not any(line.startswith("serving ") for line in self.output):
                return None  # published, but the ready callback (the schema) has not finished
            return embedded.read_endpoint(self.directory)

        self.endpoint = _wait(announced, timeout_s, "`otel-decisions serve` to announce its endpoint", 0.05)
        assert (self.endpoint.http_port, self.endpoint.tcp_port) == (self.http_port, self.tcp_port)
        assert self.endpoint.pid == self.proc.pid  # the foreground process is the owner
        return self

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    def url(self, protocol: str) -> str:
        return f"{protocol}://127.0.0.1:{self.tcp_port if protocol == 'tcp' else self.http_port}"

    def user(self, role: str) -> tuple[str, str]:
        user, password = self.endpoint.users[role]
        return str(user), str(password)

    def http_dsn(self, role: str, database: str) -> str:
        user, password = self.user(role)
        return f"http://{user}:{password}@127.0.0.1:{self.http_port}/{database}"

    def client(self, role: str = "reader", database: str = "otel") -> Any:
        """A clickhouse-connect client through the package's factory and the chdb:// DSN."""
        from otel_decisions.store.client import get_client

        return get_client(f"{self.dsn}?database={database}", role=role)  # type: ignore[arg-type]

    def native(self, role: str = "reader", database: str = "otel") -> Any:
        """A clickhouse-driver client over the native TCP port."""
        from clickhouse_driver import Client  # type: ignore[import-untyped]

        user, password = self.user(role)
        return Client("127.0.0.1", port=self.tcp_port, user=user, password=password, database=database)

    def stop(self) -> int:
        """SIGTERM (as an orchestrator would), wait, and return the exit code."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        return self.proc.returncode


def require_collector() -> None:
    if not COLLECTOR.exists():
        pytest.skip(f"e2e: {COLLECTOR} is not built; run scripts/build-binaries (needs Go) first")


@pytest.fixture
def collector_binary() -> None:
    require_collector()


def serve_store(directory: Path) -> Iterator[ServedStore]:
    store = ServedStore(directory)
    try:
        yield store.start()
    finally:
        code = store.stop()
        from otel_decisions.store import embedded

        exit_marker = json.loads((directory / embedded.EXIT_MARKER_FILE).read_text() or "{}")
        assert code == 0 and exit_marker.get("clean"), f"serve exited {code} ({exit_marker}):\n{''.join(store.output)}"


class Collector:
    """The real collector on the project's config (ClickHouse pipeline only), on free loopback ports."""

    def __init__(
        self,
        tmp: Path,
        endpoint: str,
        *,
        user: tuple[str, str],
        database: str,
        create_schema: bool = False,
    ) -> None:
        require_collector()
        config = yaml.safe_load(PROJECT_CONFIG.read_text())
        # This test has no Jaeger: keep only the ClickHouse pipeline, unchanged otherwise.
        config["exporters"] = {"clickhouse": config["exporters"]["clickhouse"]}
        config["service"]["pipelines"] = {"traces/clickhouse": config["service"]["pipelines"]["traces/clickhouse"]}
        config["processors"]["batch"]["timeout"] = "200ms"  # see rows within a second
        if create_schema:
            config["exporters"]["clickhouse"]["create_schema"] = True
        tmp.mkdir(parents=True, exist_ok=True)
        path = tmp / "otelcol.yaml"
        path.write_text(yaml.safe_dump(config))
        self.otlp_http = _free_port()
        self.health = _free_port()
        self.env = {
            **os.environ,
            "CLICKHOUSE_ENDPOINT": endpoint,
            "CLICKHOUSE_DATABASE": database,
            "CLICKHOUSE_USERNAME": user[0],
            "CLICKHOUSE_PASSWORD": user[1],
            "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{_free_port()}",
            "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{self.otlp_http}",
            "HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{self.health}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(_free_port()),
            "OTELCOL_STORAGE_DIR": str(tmp / "queue"),
        }
        self.log = tmp / "otelcol.log"
        self.config = path
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Collector:
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                [str(COLLECTOR), "--config", str(self.config)], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

        def healthy() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"collector exited {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health}/", timeout=2) as response:
                    return response.status == 200
            except OSError:
                return False

        _wait(healthy, 60, "the collector's health check")
        return self

    def log_tail(self, n: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])

    def errors(self) -> list[str]:
        return [
            line
            for line in self.log.read_text(errors="replace").splitlines()
            if '"error"' in line or "\terror\t" in line
        ]

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)


# --------------------------------------------------------------------------- create_schema: true
@pytest.fixture(scope="module")
def schema_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedStore]:
    yield from serve_store(tmp_path_factory.mktemp("served-schema") / "chdb")


def _normalise(ddl: str, database: str) -> str:
    return re.sub(rf"(?<![\w`]){re.escape(database)}(?=\.)", "<db>", ddl)


def _shape(client: Any, database: str, table: str) -> dict[str, Any]:
    """What must match: columns (name, type, order, default, codec), keys, engine, DDL text (indexes included).

    (The engine's users may not read ``system.data_skipping_indices``; the DDL carries the indexes.)
    """
    params = {"db": database, "t": table}
    columns = client.query(
        "SELECT position, name, type, default_kind, default_expression, compression_codec "
        "FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
        parameters=params,
    ).result_rows
    engine = client.query(
        "SELECT engine, sorting_key, primary_key, partition_key, engine_full "
        "FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters=params,
    ).result_rows
    ddl = client.query(f"SHOW CREATE TABLE `{database}`.`{table}`").result_rows[0][0]
    return {
        "columns": columns,
        "engine": [tuple(_normalise(str(v), database) for v in row) for row in engine],
        "ddl": _normalise(ddl, database),
    }


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_collector_create_schema_matches_schema_apply(
    collector_binary: None, schema_store: ServedStore, tmp_path: Path, protocol: str
) -> None:
    theirs_db, ours_db = f"otel_x_{protocol}", f"otel_ours_{protocol}"
    collector = Collector(
        tmp_path / "collector",
        schema_store.url(protocol),
        user=schema_store.user("admin"),  # create_schema runs DDL: the admin
        database=theirs_db,
        create_schema=True,
    ).start()
    admin = schema_store.client("admin", database="otel")
    try:

        def created() -> bool:
            names = {
                row[0]
                for row in admin.query(
                    "SELECT name FROM system.tables WHERE database = {db:String}", parameters={"db": theirs_db}
                ).result_rows
            }
            return set(COLLECTOR_TABLES) <= names

        _wait(created, 60, f"the exporter's create_schema DDL over {protocol}://")
        assert not collector.errors(), collector.log_tail()
    finally:
        collector.stop()
    done = cli(tmp_path, "schema", "apply", "--dsn", f"{schema_store.dsn}?database={ours_db}")
    assert done.returncode == 0, done.stdout + done.stderr

    native = schema_store.native("admin", database=theirs_db)
    try:
        for table in COLLECTOR_TABLES:
            theirs, ours = _shape(admin, theirs_db, table), _shape(admin, ours_db, table)
            assert theirs["columns"] == ours["columns"], table
            assert theirs["engine"] == ours["engine"], table
            assert theirs["ddl"] == ours["ddl"], f"{table}:\n{theirs['ddl']}\n!=\n{ours['ddl']}"
            # the same statement read back over the native protocol
            over_tcp = native.execute(f"SHOW CREATE TABLE `{theirs_db}`.`{table}`")[0][0]
            assert _normalise(over_tcp, theirs_db) == ours["ddl"], table
    finally:
        native.disconnect()
    mv = _shape(admin, ours_db, "otel_traces_trace_id_ts_mv")["ddl"]
    assert "DEFINER = otel_admin SQL SECURITY DEFINER" in mv, mv  # the view runs as its (admin) creator
    shape = _shape(admin, ours_db, "otel_traces")
    assert len(shape["columns"]) > 20 and "INDEX idx_trace_id" in shape["ddl"] and "MergeTree" in shape["engine"][0][0]
    if protocol == "tcp":
        print(shape["ddl"])  # shown with -s: the DDL both sides agree on


def test_serve_applies_the_schema_of_otel_before_announcing(schema_store: ServedStore) -> None:
    names = {row[0] for row in schema_store.client("admin").query("SHOW TABLES FROM otel").result_rows}
    assert {*COLLECTOR_TABLES, "decisions", "schema_migrations"} <= names, names


# --------------------------------------------------------------------------- end to end
_FLOW = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path

    import otel_decisions
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    def main() -> int:
        recorded = InMemorySpanExporter()  # the same spans as the OTLP exporter: what must arrive
        otel_decisions.configure(service_name="serve-e2e", span_exporters=[recorded])
        otel_decisions.PrefectInstrumentor().instrument()
        from prefect import flow, task
        from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
        from prefect.testing.utilities import prefect_test_harness

        id_file = Path(os.environ["E2E_ID_FILE"])
        seen = Path(os.environ["E2E_SEEN_FILE"])

        @task(name="score-applicant")
        def score(applicant: dict) -> str:
            return otel_decisions.record_decision(
                type="credit.approval", outcome="approve", confidence=0.87, score=0.91, threshold=0.5,
                reasons=["income_to_debt", "payment_history"], rationale="income well above the threshold",
                inputs=applicant, model_name="credit-gbm", model_version="3.1.0",
            ).id

        @task(name="await-reader")
        def await_reader(decision_id: str) -> str:
            otel_decisions.force_flush(30_000)  # ship the decision now, while the flow runs
            id_file.write_text(json.dumps({"id": decision_id, "flushed_at": time.time()}))
            deadline = time.monotonic() + 180
            while not seen.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("no reader saw the decision while the flow was running")
                time.sleep(0.05)
            return seen.read_text()

        @flow(name="serve-e2e-flow")
        def credit_flow() -> dict:
            decision_id = score({"income": 85000, "debt": 12000})
            return {"decision_id": decision_id, "seen_by": await_reader(decision_id)}

        with prefect_test_harness(server_startup_timeout=120), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            result = credit_flow()
            result["returned_at"] = time.time()  # the flow run has ended
        otel_decisions.force_flush(30_000)
        otel_decisions.shutdown()
        result["span_ids"] = sorted({format(s.context.span_id, "016x") for s in recorded.get_finished_spans()})
        result["flushed_at"] = time.time()
        print(json.dumps(result))
        return 0

    sys.exit(main())
    """
)


def _sample_span_count(store: ServedStore, samples: list[tuple[float, int]], done: threading.Event) -> None:
    client = store.client("reader")
    while not done.is_set():
        samples.append((time.time(), int(client.command("SELECT uniqExact(SpanId) FROM otel_traces"))))
        done.wait(0.02)


@pytest.fixture
def flow_store(collector_binary: None, tmp_path: Path) -> Iterator[ServedStore]:
    yield from serve_store(tmp_path / "chdb")


@pytest.mark.slow
@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_flow_to_collector_to_served_store_while_another_process_queries(
    flow_store: ServedStore, tmp_path: Path, protocol: str
) -> None:
    store = flow_store
    # The project owns the DDL (the collector runs create_schema: false): `serve` applied it before
    # announcing itself, so `schema apply` has nothing left to do.
    done = cli(tmp_path, "schema", "apply", "--dsn", store.dsn)
    assert done.returncode == 0 and "schema up to date" in done.stdout, done.stdout + done.stderr
    collector = Collector(
        tmp_path / "collector", store.url(protocol), user=store.user("writer"), database="otel"
    ).start()
    app = tmp_path / "app"
    app.mkdir()
    (app / "flow.py").write_text(_FLOW)
    id_file, seen_file = app / "decision_id", app / "seen"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("OTEL_")},
        "PREFECT_HOME": str(app / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "OTEL_DECISIONS_EXPORTERS": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.otlp_http}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_DECISIONS_DATA_DIR": str(app / "data"),
        "OTEL_DECISIONS_HMAC_KEY": HMAC_KEY,
        "E2E_ID_FILE": str(id_file),
        "E2E_SEEN_FILE": str(seen_file),
    }
    reader = store.client("reader")  # this process: an HTTP client of the owner, as the reader
    flow = subprocess.Popen(  # noqa: S603
        [sys.executable, str(app / "flow.py")],
        env=env,
        cwd=app,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    timings: dict[str, float] = {}
    try:
        recorded = _wait(
            lambda: id_file.exists() and id_file.read_text() and json.loads(id_file.read_text()),
            240,
            "the flow to record its decision",
            0.02,
        )
        decision_id = recorded["id"]

        def in_decisions() -> bool:
            return bool(
                reader.command(
                    "SELECT count() FROM decisions FINAL WHERE decision_id = {id:String}",
                    parameters={"id": decision_id},
                )
            )

        try:
            _wait(in_decisions, 60, f"decision {decision_id} in `decisions` over {protocol}://", 0.02)
            timings["flushed -> in decisions"] = time.time() - recorded["flushed_at"]

            def cli_sees_it() -> list[dict[str, Any]] | None:
                assert flow.poll() is None, "the flow ended before the reader saw the decision"
                done = cli(  # a second process: the CLI, a reader client of the same owner
                    tmp_path,
                    "query",
                    "run",
                    "decision_detail",
                    "--param",
                    f"decision_id={decision_id}",
                    "--format",
                    "json",
                    OTEL_DECISIONS_DSN=store.dsn,
                )
                assert done.returncode == 0, done.stdout + done.stderr
                return json.loads(done.stdout) or None

            rows = _wait(cli_sees_it, 60, f"decision {decision_id} in `query run decision_detail`")
        except AssertionError as exc:
            spans = reader.query("SELECT SpanName, count() FROM otel_traces GROUP BY SpanName").result_rows
            flow.kill()
            flow_out, flow_err = flow.communicate(timeout=30)
            raise AssertionError(
                f"{exc}\notel_traces: {spans}\ncollector log:\n{collector.log_tail()}\n"
                f"serve:\n{''.join(store.output[-20:])}\nflow:\n{flow_out[-2000:]}\n{flow_err[-4000:]}"
            ) from None
        # From here the flow ends: sample, as it does, how many of its spans are stored.
        samples: list[tuple[float, int]] = []
        sampling = threading.Event()
        sampler = threading.Thread(target=_sample_span_count, args=(store, samples, sampling), daemon=True)
        sampler.start()
        seen_file.write_text(f"pid {os.getpid()}")
        out, err = flow.communicate(timeout=240)
        assert flow.returncode == 0, out[-2000:] + err[-4000:]
        result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
        expected = set(result["span_ids"])

        def everything_arrived() -> bool:
            stored = {
                row[0]
                for row in reader.query(
                    "SELECT DISTINCT SpanId FROM otel_traces WHERE SpanId IN {ids:Array(String)}",
                    parameters={"ids": sorted(expected)},
                ).result_rows
            }
            return stored == expected

        _wait(everything_arrived, 60, f"all {len(expected)} spans of the flow in otel_traces over {protocol}://", 0.02)
        sampling.set()
        sampler.join(timeout=10)
        total = reader.command("SELECT uniqExact(SpanId) FROM otel_traces")
        complete_at = min(t for t, n in samples + [(time.time(), total)] if n >= total)
        timings["flow end -> all its spans stored"] = complete_at - result["returned_at"]
        timings["last SDK flush -> all its spans stored"] = complete_at - result["flushed_at"]
        timings["spans"] = len(expected)
    finally:
        if flow.poll() is None:
            flow.kill()
            flow.communicate(timeout=30)
        collector.stop()
    assert not collector.errors(), collector.log_tail()
    assert result["decision_id"] == decision_id
    assert decision_id in json.dumps(rows)
    typed = reader.query(
        "SELECT decision_type, outcome, confidence, reasons, model_name, model_version, flow_name, task_name "
        "FROM decisions FINAL WHERE decision_id = {id:String}",
        parameters={"id": decision_id},
    ).result_rows
    assert typed == [
        (
            "credit.approval",
            "approve",
            0.87,
            ["income_to_debt", "payment_history"],
            "credit-gbm",
            "3.1.0",
            "serve-e2e-flow",
            "score-applicant",
        )
    ]
    # The real collector rendered every attribute (floats, bools, arrays) exactly as the
    # Python path does: the integrity chain, which hashes the stored strings, verifies, and
    # the checkpoints' signatures check out with the flow's HMAC key.
    from otel_decisions.verify import verify

    report = verify(reader, key=HMAC_KEY.encode())
    assert report.ok, report.problems
    assert report.checked >= 1 and report.checkpoints >= 1 and report.unsigned_checkpoints == 0, report
    done = cli(tmp_path, "verify", "--dsn", store.dsn, OTEL_DECISIONS_HMAC_KEY=HMAC_KEY)
    assert done.returncode == 0 and "ok" in done.stdout and "unchecked" not in done.stdout, done.stdout + done.stderr
    # nothing the writer wrote went anywhere but `otel` (its grants are INSERT on otel*.*)
    with_rows = {
        row[0]
        for row in store.client("admin")
        .query("SELECT database FROM system.tables WHERE database LIKE 'otel%' AND total_rows > 0")
        .result_rows
    }
    assert with_rows == {"otel"}, with_rows
    print(
        f"\n[{protocol}://] "
        + ", ".join(f"{name}: {value:.3f} s" for name, value in timings.items() if name != "spans")
        + f" ({timings['spans']:.0f} spans)"
    )
