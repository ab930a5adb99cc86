"""Round trip on real chDB: capture API → ClickHouseSpanExporter → otel_traces → typed decisions.

Also: re-delivery counts once, data survives a process restart, the exporter contract, and the
client factory's error messages (locked chDB path, unreachable server, bad DSN).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from datetime import date

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_decisions
from otel_decisions import semconv
from otel_decisions.store import schema
from otel_decisions.store.client import get_client
from otel_decisions.store.exporter import ClickHouseSpanExporter
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.catalogue import run_query
from tests.seed import fresh_chdb_dsn

REPO = Path(__file__).resolve().parents[1]
HMAC = "roundtrip-hmac-key-0123456789"


def _typed(value, kind):
    if kind == "string[]":
        return list(value)
    if kind == "double":
        return float(value)
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return int(value)
    if kind == "date":
        return date.fromisoformat(value)
    return str(value)


@pytest.fixture
def captured_to_clickhouse(tmp_path):
    dsn = fresh_chdb_dsn("roundtrip")
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({semconv.SERVICE_NAME: "roundtrip"}))
    otel_decisions.configure(
        exporters=["clickhouse"],
        dsn=dsn,
        durable=False,
        hmac_key=HMAC,
        data_dir=str(tmp_path),
        service_name="roundtrip",
        tracer_provider=provider,
        span_exporters=[memory],
    )
    client = get_client(dsn, role="admin")
    yield client, memory
    # detach our exporters (closes the exporter's client); leave the provider inert
    otel_decisions.configure(exporters=["none"], durable=False, hmac_key=HMAC, data_dir=str(tmp_path), tracer_provider=provider)
    client.close()


def test_capture_api_round_trip_types_every_attribute(captured_to_clickhouse):
    client, memory = captured_to_clickhouse
    decision = otel_decisions.record_decision(
        type="credit.approval",
        outcome="deny",
        confidence=0.87,
        score=0.31,
        threshold=0.5,
        options=["approve", "deny", "refer"],
        rationale="debt-to-income above policy maximum",
        reasons=["debt-to-income ratio too high", "short credit history"],
        inputs={"income": 48_000, "dti": 0.52, "ssn": "078-05-1120"},
        output={"outcome": "deny"},
        subject_id="applicant-17",
        model_name="credit-scorer",
        model_version="2.0",
        model_provider="in-house",
        policy_version="policy-7",
        automation="automated",
        review_required=True,
        regulations=["ECOA-RegB-1002.9", "GDPR-22"],
        retention_class="finra-6y",
        segment="26-40",
    )
    review_id = otel_decisions.record_review(decision, reviewer="analyst-3", action="override", reason="manual check", new_outcome="approve")
    assert otel_decisions.force_flush()
    spans = memory.get_finished_spans()
    (span,) = [s for s in spans if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]
    (review_span,) = [s for s in spans if s.name == semconv.REVIEW_SPAN_NAME]

    columns = {c.key: c for c in schema.DECISION_COLUMNS}
    names = ", ".join(c.name for c in schema.DECISION_COLUMNS)
    result = client.query(f"SELECT {names}, trace_id, span_id, service_name, timestamp FROM decisions FINAL")
    (row,) = result.result_rows
    stored = dict(zip(result.column_names, row))
    attrs = span.attributes
    assert set(attrs) - set(columns) <= {semconv.DECISION_FLOW_CAPTURED}
    for key, column in columns.items():
        kind = semconv.DECISION_ATTRIBUTES[key][0]
        if key in attrs:
            assert stored[column.name] == _typed(attrs[key], kind), key
            assert isinstance(stored[column.name], {"string": str, "string[]": list, "double": float, "bool": bool, "int": int, "date": date}[kind])
        else:
            assert stored[column.name] in ("", [], None, False), key
    assert stored["decision_id"] == decision.id
    assert stored["subject_id"] != "applicant-17" and len(stored["subject_id"]) >= 16  # pseudonymised
    assert "078-05-1120" not in stored["inputs"]
    assert stored["trace_id"] == format(span.context.trace_id, "032x")
    assert stored["span_id"] == format(span.context.span_id, "016x")
    assert stored["service_name"] == "roundtrip"
    assert client.command("SELECT toUnixTimestamp64Nano(timestamp) FROM decisions") == span.start_time

    (review,) = client.query(
        "SELECT review_id, decision_id, reviewer_id, action, new_outcome, original_outcome, decided_at_ns FROM decision_reviews FINAL"
    ).result_rows
    assert review[:2] == (review_id, decision.id)
    assert review[3:6] == ("override", "approve", "deny")
    assert review[2] == review_span.attributes[semconv.DECISION_REVIEW_REVIEWER_ID] != "analyst-3"
    assert review[6] == decision.timestamp_ns
    (override,) = run_query(client, "overrides").as_dicts()
    assert override["decision_id"] == decision.id

    # the same spans delivered again (a retrying shipper) still count once
    again = ClickHouseSpanExporter(client=client)
    assert again.export(spans) is SpanExportResult.SUCCESS
    assert client.command(f"SELECT count() FROM otel_traces WHERE SpanAttributes['{semconv.DECISION_ID}'] = '{decision.id}' AND startsWith(SpanName, 'decision ')") == 2
    assert client.command("SELECT count() FROM decisions FINAL") == 1
    assert client.command("SELECT count() FROM decision_reviews FINAL") == 1
    client.command("OPTIMIZE TABLE decisions FINAL")
    assert client.command("SELECT count() FROM decisions") == 1


RESTART_WRITE = """
import sys
sys.path.insert(0, {repo!r})
from otel_decisions.store.exporter import ClickHouseSpanExporter
from tests.seed import seed_decisions
exporter = ClickHouseSpanExporter({dsn!r})
data = seed_decisions(exporter, n=60, seed=2, redeliver=10)
exporter.shutdown()
print(len(data.decisions), len(data.reviews))
"""

RESTART_READ = """
import sys
sys.path.insert(0, {repo!r})
from otel_decisions.store.client import get_client
client = get_client({dsn!r}, role="admin")
print(client.command("SELECT count() FROM decisions FINAL"), client.command("SELECT count() FROM decision_reviews FINAL"),
      client.command("SELECT count() FROM schema_migrations"))
"""


def _python(code: str, timeout: float = 120) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_data_survives_a_process_and_owner_restart(tmp_path):
    from otel_decisions.store import embedded

    dsn = f"chdb://{tmp_path / 'store'}"
    written = _python(RESTART_WRITE.format(repo=str(REPO), dsn=dsn))
    decisions, reviews = map(int, written.split())
    assert embedded.stop_server(tmp_path / "store")  # the owner too: the next reader starts a new one
    read = _python(RESTART_READ.format(repo=str(REPO), dsn=dsn))
    assert read.split() == [str(decisions), str(reviews), "5"]


def test_exporter_contract_lazy_never_raises_idempotent_shutdown(tmp_path):
    lazy_path = tmp_path / "lazy"
    lazy = ClickHouseSpanExporter(f"chdb://{lazy_path}")
    assert not lazy_path.exists()  # nothing opened at construction (processes may fork after configure)
    lazy.shutdown()
    lazy.shutdown()
    assert not lazy_path.exists()

    span = _one_span()
    unreachable = ClickHouseSpanExporter("http://default:pw@127.0.0.1:1/default")
    assert unreachable.export([span]) is SpanExportResult.FAILURE  # logged, not raised
    bad = ClickHouseSpanExporter("ftp://nowhere")
    assert bad.export([span]) is SpanExportResult.FAILURE
    assert bad.export([]) is SpanExportResult.SUCCESS
    bad.shutdown()
    bad.shutdown()
    assert bad.export([span]) is SpanExportResult.FAILURE  # after shutdown
    assert bad.force_flush() is True


def test_exporter_batches_large_exports():
    from otel_decisions.settings import DecisionSettings
    from tests.seed import build_seed

    client = get_client(fresh_chdb_dsn("batches"), role="admin")
    exporter = ClickHouseSpanExporter(client=client, settings=DecisionSettings(), insert_rows=7)
    data = build_seed(25, seed=9)
    assert exporter.export(data.spans) is SpanExportResult.SUCCESS
    assert exporter.exported == len(data.spans)
    assert client.command("SELECT count() FROM otel_traces") == len(data.spans)
    assert client.command("SELECT count() FROM decisions FINAL") == 25
    exporter.shutdown()
    client.command("SELECT 1")  # a client passed in is not closed by the exporter
    client.close()


def _one_span():
    memory = InMemorySpanExporter()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.get_tracer("t").start_span("decision x", attributes={semconv.DECISION_ID: "x"}).end()
    return memory.get_finished_spans()[0]


HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from otel_decisions.store.client import get_client
client = get_client({dsn!r}, role="writer")
client.command("SELECT 1")
print("ready", flush=True)
time.sleep(60)
"""

CONTENDER = """
import sys
sys.path.insert(0, {repo!r})
from otel_decisions.store.client import get_client
from otel_decisions.errors import OtelDecisionsError
try:
    client = get_client({dsn!r}, role="reader")
    assert client.command("SELECT count() FROM decisions") == 0
except OtelDecisionsError as exc:
    print(exc)
else:
    print("OPENED")
"""


def test_processes_share_one_embedded_database_at_the_same_time(tmp_path):
    """What chDB alone cannot do: a second process on the same directory is a client, not refused."""
    path = tmp_path / "shared"
    dsn = f"chdb://{path}"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER.format(repo=str(REPO), dsn=dsn)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        message = _python(CONTENDER.format(repo=str(REPO), dsn=dsn))
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert message == "OPENED"


def test_client_factory_errors_are_clear():
    with pytest.raises(OtelDecisionsError, match="unsupported scheme 'ftp'"):
        get_client("ftp://example.com/db")
    with pytest.raises(OtelDecisionsError, match="no host"):
        get_client("http:///db")
    with pytest.raises(OtelDecisionsError, match=r"bad port"):
        get_client("http://host:notaport/db")
    with pytest.raises(OtelDecisionsError, match=r"cannot reach the ClickHouse server at http://u:\*\*\*@127.0.0.1:1/db") as info:
        get_client("http://u:secret@127.0.0.1:1/db")
    assert "secret" not in str(info.value)


def test_one_process_uses_two_embedded_databases(tmp_path):
    first_dsn = fresh_chdb_dsn("onepath")
    first = get_client(first_dsn, role="writer")
    second = get_client(f"chdb://{tmp_path / 'other'}", role="writer")
    for client in (first, second):  # the writer may only insert; the schema was applied for it
        client.insert("otel_traces", [["decision t"]], column_names=["SpanName"])
    readers = [get_client(fresh_dsn, role="reader") for fresh_dsn in (first_dsn, f"chdb://{tmp_path / 'other'}")]
    assert [r.command("SELECT count() FROM otel_traces") for r in readers] == [1, 1]
    first.close()
    second.close()


def test_a_reader_never_creates_a_store(tmp_path):
    from otel_decisions.errors import StoreNotFoundError

    with pytest.raises(StoreNotFoundError, match="no decision store here") as info:
        get_client(f"chdb://{tmp_path / 'typo'}", role="reader")
    assert not (tmp_path / "typo").exists() and info.value.exit_code == 3


def test_an_embedded_dsn_names_an_otel_database(tmp_path):
    from otel_decisions.errors import SettingsError

    with pytest.raises(SettingsError, match="otel_decisions_2026") as info:
        get_client(f"chdb://{tmp_path}?database=decisions-2026", role="admin")
    assert info.value.field == "dsn"


def test_server_errors_are_classified_by_clickhouse_code_not_message_text():
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    from otel_decisions.errors import StoreAuthError, StoreError, StoreNotFoundError
    from otel_decisions.store.client import _server_error

    auth = _server_error("http://u:pw@h:8123/db", DatabaseError("u: password is incorrect", code=516))
    assert isinstance(auth, StoreAuthError) and "rejected the credentials" in str(auth) and "pw" not in str(auth)
    # the code decides, not words in the message
    not_auth = _server_error("http://u:pw@h:8123/db", DatabaseError("Authentication failed (AUTHENTICATION_FAILED)", code=62))
    assert not isinstance(not_auth, StoreAuthError)
    unknown_db = _server_error("http://u:pw@h:8123/nope", DatabaseError("Database nope does not exist.", code=81))
    assert isinstance(unknown_db, StoreNotFoundError) and unknown_db.exit_code == 3
    assert "no decision store here" in str(unknown_db) and "schema apply" in str(unknown_db)
    refused = _server_error("http://u:pw@h:1/db", OperationalError("Max retries exceeded with url: /?query_id=4a1f-b401-password"))
    assert type(refused) is StoreError and "cannot reach the ClickHouse server" in str(refused)


def test_copies_inside_one_insert_are_one_decision_and_one_review():
    # Exports insert without optimize_on_insert (no in-block collapse): copies that share one
    # INSERT must still count once in FINAL and in the catalogue queries.
    from tests.seed import build_seed

    client = get_client(fresh_chdb_dsn("dupbatch"), role="admin")
    exporter = ClickHouseSpanExporter(client=client)
    data = build_seed(40, seed=5)
    spans = list(data.spans)
    assert exporter.export(spans + spans) is SpanExportResult.SUCCESS  # one INSERT, every span twice
    assert client.command("SELECT count() FROM otel_traces") == 2 * len(spans)
    assert client.command("SELECT count() FROM decisions FINAL") == 40
    assert client.command("SELECT count() FROM decision_reviews FINAL") == len(data.reviews)
    reviewed = next(r.decision_id for r in data.reviews)
    subject = next(d.subject_id for d in data.decisions if d.decision_id == reviewed)
    rows = run_query(client, "subject_decisions", {"subject_id": subject}).rows
    expected = sorted((d for d in data.decisions if d.subject_id == subject), key=lambda d: (d.timestamp_ns, d.decision_id))
    assert [row[0] for row in rows] == [d.decision_id for d in expected]
    columns = run_query(client, "subject_decisions", {"subject_id": subject}).columns
    counts = {row[0]: row[columns.index("review_count")] for row in rows}
    assert counts == {d.decision_id: sum(r.decision_id == d.decision_id for r in data.reviews) for d in expected}
    exporter.shutdown()
    client.close()


def test_the_exporter_reaches_a_new_owner_after_the_old_one_exits(tmp_path):
    """A long-lived process (a worker, serve()) outlives an idle owner: after one failed export it
    opens a new client, which starts a new owner on other ports, and delivers (nothing was dropped:
    the shipper retries what failed)."""
    from otel_decisions.store import embedded

    dsn = f"chdb://{tmp_path / 'store'}"
    exporter = ClickHouseSpanExporter(dsn)
    span = _one_span()
    assert exporter.export([span]) is SpanExportResult.SUCCESS
    first = embedded.read_endpoint(tmp_path / "store")
    assert first is not None and embedded.stop_server(tmp_path / "store")
    assert exporter.export([span]) is SpanExportResult.FAILURE  # the old owner's port is gone
    assert exporter.export([span]) is SpanExportResult.SUCCESS  # a new owner, found by a new client
    second = embedded.read_endpoint(tmp_path / "store")
    assert second is not None and second.pid != first.pid
    reader = get_client(dsn, role="reader")
    assert reader.command("SELECT count() FROM otel_traces") == 2
    exporter.shutdown()
