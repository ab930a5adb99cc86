"""The exporter's span → otel_traces row mapping against the collector's documented mapping.

Expected values are written out from the collector contrib v0.161.0 sources (see the module
docstring of otel_decisions.store.mapping): exporter_traces.go (columns), internal/util.go
(AttributesToMap = pcommon Value.AsString), pdata v1.67.0 pcommon/value.go (AsString, float64AsString,
JSON for slices/maps), traceutil (hex ids), ptrace span_kind.go / status_code.go.
"""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags, TraceState

from otel_decisions import semconv
from otel_decisions.store.client import get_client
from otel_decisions.store.exporter import ClickHouseSpanExporter
from otel_decisions.integrity import attribute_to_string
from otel_decisions.store.mapping import TRACES_COLUMNS, span_to_row
from tests.seed import fresh_chdb_dsn

TRACE_ID = 0x0102030405060708090A0B0C0D0E0F10
PARENT_ID = 0x1112131415161718
LINK_TRACE = 0xA1A2A3A4A5A6A7A8A9AAABACADAEAFB0
LINK_SPAN = 0x00000000000000FF
START = 1_767_571_200_123_456_789  # 2026-01-05 00:00:00.123456789 UTC


def make_span():
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({semconv.SERVICE_NAME: "svc", "host.cpu.count": 8}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("scope.name", "1.2.3")
    parent = SpanContext(
        TRACE_ID, PARENT_ID, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "x1"), ("k2", "v2")])
    )
    link_ctx = SpanContext(LINK_TRACE, LINK_SPAN, is_remote=True, trace_state=TraceState([("lk", "lv")]))
    span = tracer.start_span(
        semconv.DECISION_SPAN_PREFIX + "credit.approval",
        context=trace.set_span_in_context(NonRecordingSpan(parent)),
        kind=trace.SpanKind.CLIENT,
        start_time=START,
        links=[Link(link_ctx, {"link.n": 3, "link.ok": True})],
        attributes={
            semconv.DECISION_ID: "5c6b1a8e-0000-4000-8000-000000000001",
            "a.str": "héllo <&> \"q\"",
            "a.bool": True,
            "a.false": False,
            "a.int": -42,
            "a.big_int": 9_007_199_254_740_993,
            "a.double": 0.25,
            "a.double_whole": 3.0,
            "a.double_small": 1e-7,
            "a.double_tiny_f": 1.5e-6,
            "a.double_huge": 1e21,
            "a.double_big_f": 1.2345678901234567e20,
            "a.double_neg_zero": -0.0,
            "a.str_list": ["a", "b\"c", "<tag>&", "line\nbreak", "\u2028sep", "ctl\x01"],
            "a.bool_list": [True, False],
            "a.int_list": [1, -2, 3],
            "a.double_list": [0.5, 2.0, 1e-7, 1e21],
            "a.empty_list": [],
        },
    )
    span.add_event("state.change", {"from": "Running", "n": 2, "ratio": 0.5}, timestamp=START + 1_000)
    span.add_event("plain", timestamp=START + 2_000)
    span.set_status(Status(StatusCode.ERROR, "model timed out"))
    span.end(end_time=START + 1_500_000)
    provider.shutdown()
    (finished,) = memory.get_finished_spans()
    return finished


# The collector's row for that span, column by column.
def expected_row(span):
    return {
        "Timestamp": START,
        "TraceId": "0102030405060708090a0b0c0d0e0f10",
        "SpanId": format(span.context.span_id, "016x"),
        "ParentSpanId": "1112131415161718",
        "TraceState": "vendor=x1,k2=v2",
        "SpanName": "decision credit.approval",
        "SpanKind": "Client",
        "ServiceName": "svc",
        "ResourceAttributes": {"service.name": "svc", "host.cpu.count": "8"},
        "ScopeName": "scope.name",
        "ScopeVersion": "1.2.3",
        "SpanAttributes": {
            "decision.id": "5c6b1a8e-0000-4000-8000-000000000001",
            "a.str": "héllo <&> \"q\"",
            "a.bool": "true",
            "a.false": "false",
            "a.int": "-42",
            "a.big_int": "9007199254740993",
            "a.double": "0.25",
            "a.double_whole": "3",
            "a.double_small": "1e-7",
            "a.double_tiny_f": "0.0000015",
            "a.double_huge": "1e+21",
            "a.double_big_f": "123456789012345670000",
            "a.double_neg_zero": "-0",
            "a.str_list": '["a","b\\"c","<tag>&","line\\nbreak","\\u2028sep","ctl\\u0001"]',
            "a.bool_list": "[true,false]",
            "a.int_list": "[1,-2,3]",
            "a.double_list": "[0.5,2,1e-7,1e+21]",
            "a.empty_list": "[]",
        },
        "Duration": 1_500_000,
        "StatusCode": "Error",
        "StatusMessage": "model timed out",
        "Events.Timestamp": [START + 1_000, START + 2_000],
        "Events.Name": ["state.change", "plain"],
        "Events.Attributes": [{"from": "Running", "n": "2", "ratio": "0.5"}, {}],
        "Links.TraceId": ["a1a2a3a4a5a6a7a8a9aaabacadaeafb0"],
        "Links.SpanId": ["00000000000000ff"],
        "Links.TraceState": ["lk=lv"],
        "Links.Attributes": [{"link.n": "3", "link.ok": "true"}],
    }


def test_row_mapping_matches_collector_for_events_links_every_type_and_error():
    span = make_span()
    row = dict(zip(TRACES_COLUMNS, span_to_row(span)))
    expected = expected_row(span)
    assert list(row) == list(expected)  # traces_insert.sql column order
    for column in TRACES_COLUMNS:
        assert row[column] == expected[column], column
    # map key order is the attribute insertion order (pcommon.Map keeps it; so does the Map column)
    assert list(row["SpanAttributes"]) == list(expected["SpanAttributes"])


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1"),
        (0.1, "0.1"),
        (123456.789, "123456.789"),
        (1e20, "100000000000000000000"),
        (1e-6, "0.000001"),
        (9.999e-7, "9.999e-7"),
        (2.5e-10, "2.5e-10"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (float("nan"), "NaN"),
        (float("inf"), "Infinity"),
        (float("-inf"), "-Infinity"),
        ([float("nan")], ""),  # Go's json.Encoder refuses NaN; AsString yields ""
        (b"\x00\xff", "AP8="),
    ],
)
def test_attribute_values_render_like_pcommon_asstring(value, text):
    assert attribute_to_string(value) == text


def test_unset_status_and_root_span_render_empty_parent_and_message():
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    span = provider.get_tracer("t").start_span("root", start_time=START)
    span.end(end_time=START)
    row = dict(zip(TRACES_COLUMNS, span_to_row(memory.get_finished_spans()[0])))
    assert (row["ParentSpanId"], row["TraceState"], row["SpanKind"], row["StatusCode"], row["StatusMessage"]) == (
        "",
        "",
        "Internal",
        "Unset",
        "",
    )
    assert row["ScopeVersion"] == "" and row["Duration"] == 0
    assert row["Events.Name"] == [] and row["Links.TraceId"] == []


def test_stored_row_reads_back_identically_from_chdb():
    span = make_span()
    client = get_client(fresh_chdb_dsn("mapping"), role="admin")
    exporter = ClickHouseSpanExporter(client=client)
    assert exporter.export([span]).name == "SUCCESS"
    columns = ", ".join(
        f"`{c}`" if c not in ("Timestamp", "Events.Timestamp") else
        ("toUnixTimestamp64Nano(Timestamp)" if c == "Timestamp" else "arrayMap(t -> toUnixTimestamp64Nano(t), `Events.Timestamp`)")
        for c in TRACES_COLUMNS
    )
    (stored,) = client.query(f"SELECT {columns} FROM otel_traces").result_rows
    expected = expected_row(span)
    for column, value in zip(TRACES_COLUMNS, stored):
        assert value == expected[column], column
    client.close()


def _spans_with_attributes(*attribute_sets):
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({semconv.SERVICE_NAME: "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for attributes in attribute_sets:
        tracer.start_span("s", attributes=attributes, start_time=START).end(end_time=START + 5)
    provider.shutdown()
    return list(memory.get_finished_spans())


def _arrow_rows(table):
    import pyarrow as pa

    columns = []
    for name in TRACES_COLUMNS:
        column = table.column(name)
        if name == "Timestamp":
            column = column.cast(pa.int64())
        elif name == "Events.Timestamp":
            column = column.cast(pa.list_(pa.int64()))
        values = column.to_pylist()
        if name.endswith("Attributes"):  # maps come back as [(key, value), ...]: keep the order
            values = [[dict(m) for m in v] if name.startswith(("Events", "Links")) else dict(v) for v in values]
        columns.append(values)
    return [list(row) for row in zip(*columns)]


def test_arrow_batch_holds_exactly_the_rows_of_span_to_row():
    from otel_decisions.store.mapping import spans_to_arrow
    from tests.seed import build_seed

    spans = list(build_seed(30, seed=11).spans) + [make_span()]
    # Equal tuples that render differently ((1,) == (1.0,) == (True,)) in one batch, and a
    # string array repeated, with and without characters to escape.
    spans += _spans_with_attributes(
        {"a": ("x", "y")},
        {"a": (1,)},
        {"a": (1.0,)},
        {"a": (True,)},
        {"a": ("x", "y"), "b": ('q"', "z")},
        {"a": ("x", "y"), "b": ('q"', "z")},
        {},
    )
    table = spans_to_arrow(spans)
    assert table.column_names == list(TRACES_COLUMNS)
    rows = _arrow_rows(table)
    expected = [span_to_row(span) for span in spans]
    assert len(rows) == len(expected)
    for got, want in zip(rows, expected):
        assert got == want
        for i, column in enumerate(TRACES_COLUMNS):
            if column in ("ResourceAttributes", "SpanAttributes"):
                assert list(got[i]) == list(want[i])  # key order kept
    assert [r[TRACES_COLUMNS.index("SpanAttributes")]["a"] for r in rows[-7:-3]] == ['["x","y"]', "[1]", "[1]", "[true]"]


def test_a_streamed_insert_stores_the_same_rows_as_one_arrow_table():
    """Over HTTP a large batch is sent as an ArrowStream of chunks: same rows, one INSERT."""
    from otel_decisions.store.exporter import STREAM_CHUNK
    from tests.seed import build_seed

    spans = build_seed(int(STREAM_CHUNK * 2.5), seed=5).spans
    assert len(spans) > STREAM_CHUNK * 2
    streamed_client = get_client(fresh_chdb_dsn("streamed"), role="admin")
    whole_client = get_client(fresh_chdb_dsn("whole"), role="admin")
    streamed = ClickHouseSpanExporter(client=streamed_client, insert_rows=len(spans))
    whole = ClickHouseSpanExporter(client=whole_client, insert_rows=STREAM_CHUNK)  # batches <= a chunk: not streamed
    assert streamed.export(spans).name == whole.export(spans).name == "SUCCESS"
    columns = ", ".join(f"`{c}`" for c in TRACES_COLUMNS)
    order = "ORDER BY SpanId, Timestamp"
    rows = [c.query(f"SELECT {columns} FROM otel_traces {order}").result_rows for c in (streamed_client, whole_client)]
    assert len(rows[0]) == len(spans) and rows[0] == rows[1]
    parts = streamed_client.command(
        "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'otel_traces' AND active"
    )
    days = streamed_client.command("SELECT uniqExact(toDate(Timestamp)) FROM otel_traces")
    assert parts == days  # one part per daily partition: the chunks were one INSERT
