"""The real collector (``otelcol-decisions``) writing through ``otel-decisions serve``.

The collector's clickhouse exporter (clickhouse-go/v2 over HTTP, with the project's config:
``compress`` unset, so LZ4 in ClickHouse's own block framing, ``async_insert=true``, Native
at its protocol revision) talks to the server exactly as it would to ClickHouse.

* ``create_schema: true`` on a fresh database: the exporter's own DDL runs through serve and
  the tables it makes match what ``schema apply`` makes (columns, types, order, keys, engines).
* End to end: a Prefect flow exports OTLP to the collector, which writes through serve; the
  decision lands in the typed ``decisions`` table and a catalogue query, run by a second
  process (the CLI) while the flow is still running, returns it.

Skipped, with the reason, when ``scripts/build-binaries`` has not built the collector.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_serve import ServeProcess

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parent.parent
COLLECTOR = REPO / ".cache" / "bin" / "otelcol-decisions"
PROJECT_CONFIG = REPO / "collector_config" / "otelcol.yaml"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait(predicate: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


class Collector:
    """The real collector on the project's config (ClickHouse pipeline only), on free loopback ports."""

    def __init__(self, tmp: Path, serve_url: str, *, create_schema: bool = False, database: str = "default") -> None:
        if not COLLECTOR.exists():
            pytest.skip(f"e2e: {COLLECTOR} is not built; run scripts/build-binaries (needs Go) first")
        config = yaml.safe_load(PROJECT_CONFIG.read_text())
        # This test has no Jaeger: keep only the ClickHouse pipeline, unchanged otherwise.
        config["exporters"] = {"clickhouse": config["exporters"]["clickhouse"]}
        config["service"]["pipelines"] = {"traces/clickhouse": config["service"]["pipelines"]["traces/clickhouse"]}
        config["processors"]["batch"]["timeout"] = "200ms"  # see rows within a second
        if create_schema:
            config["exporters"]["clickhouse"]["create_schema"] = True
        path = tmp / "otelcol.yaml"
        path.write_text(yaml.safe_dump(config))
        self.otlp_http = _free_port()
        self.health = _free_port()
        self.env = {
            **os.environ,
            "CLICKHOUSE_ENDPOINT": serve_url,
            "CLICKHOUSE_DATABASE": database,
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
        self.proc = subprocess.Popen(  # noqa: S603
            [str(COLLECTOR), "--config", str(self.config)], env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
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

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path / "chdb").start()
    yield proc
    assert proc.stop() == 0, "".join(proc.output)


def _client(url: str) -> Any:
    from otel_decisions.store.client import get_client

    return get_client(url)


def _shape(client: Any, database: str, table: str) -> dict[str, Any]:
    """What must match: columns (name, type, order, default, codec), keys, engine, indices, DDL text."""
    params = {"db": database, "t": table}
    columns = client.query(
        "SELECT position, name, type, default_kind, default_expression, compression_codec "
        "FROM system.columns WHERE database = {db:String} AND table = {t:String} ORDER BY position",
        parameters=params,
    ).result_rows
    engine = client.query(
        "SELECT engine, sorting_key, primary_key, partition_key, replaceRegexpAll(engine_full, {db:String} || '\\\\.', '') "
        "FROM system.tables WHERE database = {db:String} AND name = {t:String}",
        parameters=params,
    ).result_rows
    indices = client.query(
        "SELECT name, type_full, expr, granularity FROM system.data_skipping_indices "
        "WHERE database = {db:String} AND table = {t:String} ORDER BY name",
        parameters=params,
    ).result_rows
    ddl = client.command(f"SHOW CREATE TABLE `{database}`.`{table}`")
    ddl = str(ddl).replace(f"{database}.", "<db>.").replace("\\n", "\n")
    return {"columns": columns, "engine": engine, "indices": indices, "ddl": ddl}


def test_collector_create_schema_through_serve_matches_schema_apply(served: ServeProcess, tmp_path: Path) -> None:
    from otel_decisions.store.schema import apply_migrations

    collector = Collector(tmp_path, served.url, create_schema=True, database="collector_db").start()
    try:
        client = _client(served.url)

        def created() -> bool:
            names = {
                row[0]
                for row in client.query("SELECT name FROM system.tables WHERE database = 'collector_db'").result_rows
            }
            return {"otel_traces", "otel_traces_trace_id_ts", "otel_traces_trace_id_ts_mv"} <= names

        _wait(created, 60, "the exporter's create_schema DDL through serve")
    finally:
        collector.stop()
    client.command("CREATE DATABASE IF NOT EXISTS ours")
    apply_migrations(_client(f"{served.url}/ours"))
    for table in ("otel_traces", "otel_traces_trace_id_ts", "otel_traces_trace_id_ts_mv"):
        theirs, ours = _shape(client, "collector_db", table), _shape(client, "ours", table)
        assert theirs["columns"] == ours["columns"], table
        assert theirs["engine"] == ours["engine"], table
        assert theirs["indices"] == ours["indices"], table
        assert theirs["ddl"] == ours["ddl"], table
    shape = _shape(client, "ours", "otel_traces")
    assert len(shape["columns"]) > 20 and shape["indices"] and "MergeTree" in shape["engine"][0][0]
    print(shape["ddl"])  # shown with -s: the DDL both sides agree on


_FLOW = textwrap.dedent(
    '''
    import json, os, sys, time
    from pathlib import Path

    import otel_decisions

    def main() -> int:
        otel_decisions.configure(service_name="serve-e2e")
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
            id_file.write_text(decision_id)
            deadline = time.monotonic() + 180
            while not seen.exists():
                if time.monotonic() > deadline:
                    raise RuntimeError("no reader saw the decision while the flow was running")
                time.sleep(0.2)
            return seen.read_text()

        @flow(name="serve-e2e-flow")
        def credit_flow() -> dict:
            decision_id = score({"income": 85000, "debt": 12000})
            return {"decision_id": decision_id, "seen_by": await_reader(decision_id)}

        with prefect_test_harness(server_startup_timeout=120), temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            result = credit_flow()
        otel_decisions.force_flush(30_000)
        otel_decisions.shutdown()
        print(json.dumps(result))
        return 0

    sys.exit(main())
    '''
)


@pytest.mark.slow
def test_flow_to_collector_to_serve_while_another_process_queries(served: ServeProcess, tmp_path: Path) -> None:
    from otel_decisions.store.schema import apply_migrations

    apply_migrations(_client(served.url))  # the project owns the DDL; the collector runs create_schema: false
    collector = Collector(tmp_path, served.url).start()
    app = tmp_path / "app"
    app.mkdir()
    (app / "flow.py").write_text(_FLOW)
    id_file, seen_file = app / "decision_id", app / "seen"
    env = {
        **os.environ,
        "PREFECT_HOME": str(app / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "OTEL_DECISIONS_EXPORTERS": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.otlp_http}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_DECISIONS_DATA_DIR": str(app / "data"),
        "OTEL_DECISIONS_HMAC_KEY": "serve-e2e-key-0123456789abcdef",
        "E2E_ID_FILE": str(id_file),
        "E2E_SEEN_FILE": str(seen_file),
    }
    flow = subprocess.Popen(  # noqa: S603
        [sys.executable, str(app / "flow.py")], env=env, cwd=app, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        decision_id = _wait(lambda: id_file.exists() and id_file.read_text(), 240, "the flow to record its decision")
        reader_env = {**os.environ, "OTEL_DECISIONS_DSN": served.url}

        def reader_sees_it() -> list[dict[str, Any]] | None:
            assert flow.poll() is None, "the flow ended before the reader saw the decision"
            done = subprocess.run(  # a second process: the CLI, over the http:// DSN
                [sys.executable, "-c", "from otel_decisions.cli import main; main()", "query", "run", "decision_detail",
                 "--param", f"decision_id={decision_id}", "--format", "json"],
                env=reader_env, capture_output=True, text=True, timeout=120,
            )
            assert done.returncode == 0, done.stdout + done.stderr
            rows = json.loads(done.stdout)
            return rows or None

        try:
            rows = _wait(reader_sees_it, 90, f"decision {decision_id} in `query run decision_detail` through serve")
        except AssertionError as exc:
            spans = _client(served.url).query("SELECT SpanName, count() FROM otel_traces GROUP BY SpanName").result_rows
            flow.kill()
            flow_out, flow_err = flow.communicate(timeout=30)
            raise AssertionError(
                f"{exc}\notel_traces: {spans}\ncollector log:\n{collector.log_tail()}\n"
                f"serve:\n{''.join(served.output[-20:])}\nflow:\n{flow_out[-2000:]}\n{flow_err[-4000:]}"
            ) from None
        seen_file.write_text(f"pid {os.getpid()}")
        out, err = flow.communicate(timeout=240)
        assert flow.returncode == 0, out[-2000:] + err[-4000:]
    finally:
        if flow.poll() is None:
            flow.kill()
        collector.stop()
    result = json.loads([line for line in out.splitlines() if line.startswith("{")][-1])
    assert result["decision_id"] == decision_id
    assert decision_id in json.dumps(rows)
    typed = _client(served.url).query(
        "SELECT decision_type, outcome, confidence, reasons, model_name, model_version FROM decisions FINAL "
        "WHERE decision_id = {id:String}",
        parameters={"id": decision_id},
    ).result_rows
    assert typed == [("credit.approval", "approve", 0.87, ["income_to_debt", "payment_history"], "credit-gbm", "3.1.0")]
    # The real collector rendered every attribute (floats, bools, arrays) exactly as the
    # Python path does: the integrity chain, which hashes the stored strings, verifies.
    from otel_decisions.verify import verify

    report = verify(_client(served.url))
    assert report.checked >= 1 and report.ok, report.problems
