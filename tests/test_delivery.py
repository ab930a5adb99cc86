"""Durable delivery in one process: record format, spool-before-return, corruption, accounting, CLI.

Fault injection with real processes is in test_delivery_faults.py.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, StatusCode
from typer.testing import CliRunner

from otel_decisions import semconv
from otel_decisions.settings import DecisionSettings
from otel_decisions.delivery import (
    DurableSpanProcessor,
    delivery_status,
    drain,
    is_durable_span,
)
from otel_decisions.delivery._codec import HEADER, KIND_SPAN, MAGIC, SegmentDecoder, SpanEncoder, iter_frames


class _Keep(SpanProcessor):
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.spans.append(span)


def _decision(tracer: trace.Tracer, **extra: object) -> str:
    decision_id = str(uuid.uuid4())
    span = tracer.start_span(
        semconv.DECISION_SPAN_PREFIX + "credit.approval",
        attributes={semconv.DECISION_ID: decision_id, semconv.DECISION_OUTCOME: "approve", **extra},  # type: ignore[dict-item]
    )
    span.end()
    return decision_id


def _segments(settings: DecisionSettings) -> list[Path]:
    return sorted(Path(settings.resolved_spool_dir).glob("*/seg-*.spool"))


def test_record_format_round_trips_to_identical_otlp(tmp_path: Path) -> None:
    keep = _Keep()
    provider = TracerProvider(
        resource=Resource.create({semconv.SERVICE_NAME: "svc", "deployment.environment.name": "test"}),
        span_limits=SpanLimits(max_span_attributes=4),
    )
    provider.add_span_processor(keep)
    tracer = provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, "1.2.3", schema_url="https://x/1", attributes={"a": 1})
    with tracer.start_as_current_span("flow") as parent:
        span = tracer.start_span(
            semconv.DECISION_SPAN_PREFIX + "t",
            kind=trace.SpanKind.SERVER,
            links=[Link(parent.get_span_context(), {"why": "reviewed"})],
            attributes={"k1": 1, "k2": 0.5, "k3": ("a", "b"), "k4": True, "k5": "dropped"},
        )
        span.add_event("scored", {"score": 0.9})
        span.set_status(StatusCode.ERROR, "model unavailable")
        span.end()
    original = keep.spans[0]
    frames = SpanEncoder().encode(original)
    decoded = SegmentDecoder().decode_frames(iter_frames(MAGIC + frames, len(MAGIC)).records)[0]
    assert encode_spans([decoded]).SerializeToString() == encode_spans([original]).SerializeToString()
    assert decoded.dropped_attributes == 1 and decoded.parent == original.parent
    assert decoded.instrumentation_scope == original.instrumentation_scope
    assert decoded.to_json() == original.to_json()


def test_durable_span_selection() -> None:
    keep = _Keep()
    provider = TracerProvider()
    provider.add_span_processor(keep)
    tracer = provider.get_tracer("t")
    for name, attributes in [
        (semconv.DECISION_SPAN_PREFIX + "x", {}),
        (semconv.REVIEW_SPAN_NAME, {}),
        ("named", {}),
        ("flow run", {semconv.DECISION_FLOW_CAPTURED: 3}),
        ("other", {}),
    ]:
        tracer.start_span(name, attributes=attributes).end()
    settings = DecisionSettings(durable_span_names=["named"])
    assert [is_durable_span(s, settings) for s in keep.spans] == [True, True, True, True, False]


def test_span_is_on_disk_when_end_returns(tmp_path: Path) -> None:
    settings = DecisionSettings(data_dir=tmp_path, commit_interval_ms=60_000, commit_max_records=1_000_000)
    processor = DurableSpanProcessor([], settings, ship=False)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    decision_id = _decision(provider.get_tracer("t"))
    (segment,) = _segments(settings)
    (record,) = [p for k, _, p in iter_frames(segment.read_bytes(), len(MAGIC)).records if k == KIND_SPAN]
    assert decision_id.encode() in bytes(record)
    assert processor.counts()["spooled"] == 1 and processor.counts()["durable"] == 0  # no fsync yet (group commit)
    provider.shutdown()
    assert delivery_status(settings).pending == 1


def test_strict_mode_returns_after_fsync(tmp_path: Path) -> None:
    settings = DecisionSettings(data_dir=tmp_path, strict_fsync=True, commit_interval_ms=60_000)
    processor = DurableSpanProcessor([], settings, ship=False)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    for _ in range(3):
        _decision(provider.get_tracer("t"))
        assert processor.counts()["durable"] == processor.counts()["spooled"]
    provider.shutdown()


def test_delivers_exactly_once_and_accounts(tmp_path: Path) -> None:
    reader = InMemoryMetricReader()
    settings = DecisionSettings(data_dir=tmp_path)
    exporter = InMemorySpanExporter()
    processor = DurableSpanProcessor([exporter], settings, meter_provider=MeterProvider(metric_readers=[reader]))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    ids = [_decision(provider.get_tracer("t")) for _ in range(1000)]
    assert processor.force_flush(30_000)
    delivered = [s.attributes[semconv.DECISION_ID] for s in exporter.get_finished_spans()]
    assert sorted(delivered) == sorted(ids)
    metrics = {
        m.name: m.data.data_points[0].value
        for rm in reader.get_metrics_data().resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    }
    assert metrics["otel_decisions.delivery.captured"] == 1000
    assert metrics["otel_decisions.delivery.delivered"] == 1000
    assert metrics["otel_decisions.delivery.pending"] == 0
    provider.shutdown()
    status = delivery_status(settings)
    assert (status.captured, status.delivered, status.pending) == (1000, 1000, 0)
    assert status.directories == []  # a fully delivered, exited process leaves nothing behind


def test_corrupt_record_in_the_middle_is_quarantined_and_the_rest_delivered(tmp_path: Path) -> None:
    settings = DecisionSettings(data_dir=tmp_path)
    processor = DurableSpanProcessor([], settings, ship=False)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    ids = [_decision(provider.get_tracer("t")) for _ in range(200)]
    provider.shutdown()
    (segment,) = _segments(settings)
    data = bytearray(segment.read_bytes())
    spans = [(end, p) for k, end, p in iter_frames(bytes(data), len(MAGIC)).records if k == KIND_SPAN]
    end, payload = spans[100]
    data[end - len(payload) // 2] ^= 0xFF  # flip a byte inside record 100
    segment.write_bytes(bytes(data))
    exporter = InMemorySpanExporter()
    status = drain(settings, exporters=[exporter], timeout_s=30)
    delivered = [s.attributes[semconv.DECISION_ID] for s in exporter.get_finished_spans()]
    assert delivered == ids[:100] + ids[101:]
    assert status.quarantined_regions == 1 and status.pending == 0 and status.delivered == 199
    report = json.loads(Path(status.quarantine_files[0]).read_text())
    assert report["reason"].startswith("corrupt record") and report["length"] == len(payload) + HEADER.size


def test_cli_status_reports_pending(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    settings = DecisionSettings(data_dir=tmp_path)
    processor = DurableSpanProcessor([], settings, ship=False)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    for _ in range(5):
        _decision(provider.get_tracer("t"))
    provider.shutdown()
    from otel_decisions.cli import app

    monkeypatch.setenv("OTEL_DECISIONS_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(app, ["delivery", "status", "--json"])
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["pending"] == 5 and status["captured"] == 5 and status["delivered"] == 0
    result = CliRunner().invoke(app, ["delivery", "status"])
    assert "pending" in result.output and "exited" in result.output


def test_built_processor_keeps_only_durable_spans(tmp_path: Path) -> None:
    from otel_decisions.delivery import build_durable_processor

    exporter = InMemorySpanExporter()
    processor = build_durable_processor([exporter], DecisionSettings(data_dir=tmp_path))
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    decision_id = _decision(tracer)
    tracer.start_span("task run").end()
    assert processor.force_flush(10_000)
    assert [s.attributes[semconv.DECISION_ID] for s in exporter.get_finished_spans()] == [decision_id]
    provider.shutdown()


def test_attribute_values_of_str_and_int_subclasses_survive_the_spool():
    """Prefect records its StateType (a str enum) as an attribute: the spool must round-trip it as text."""
    import enum

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_decisions.delivery._codec import SegmentDecoder, SpanEncoder, iter_frames

    class State(str, enum.Enum):
        COMPLETED = "COMPLETED"

    class Level(enum.IntEnum):
        HIGH = 3

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(memory))
    span = provider.get_tracer("t").start_span("decision t", attributes={"state": State.COMPLETED, "level": Level.HIGH,
                                                                         "seq": (State.COMPLETED, "x")})
    span.add_event("state", {"type": State.COMPLETED})
    span.end()
    (finished,) = memory.get_finished_spans()
    encoder = SpanEncoder()
    data = encoder.encode(finished)
    (decoded,) = SegmentDecoder().decode_frames(iter_frames(data, 0).records)
    assert decoded.attributes["state"] == "COMPLETED" and type(decoded.attributes["state"]) is str
    assert decoded.attributes["level"] == 3 and type(decoded.attributes["level"]) is int
    assert decoded.attributes["seq"] == ("COMPLETED", "x")
    assert decoded.events[0].attributes["type"] == "COMPLETED"


def test_spool_is_private_to_its_user(tmp_path: Path) -> None:
    """Spooled records are personal data (pseudonymised, but still): owner-only directories and files."""
    import stat

    settings = DecisionSettings(data_dir=tmp_path / "data")
    processor = DurableSpanProcessor([], settings, ship=False)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    _decision(provider.get_tracer("t"))
    (segment,) = _segments(settings)
    assert stat.S_IMODE(settings.resolved_spool_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(segment.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(segment.stat().st_mode) == 0o600
    provider.shutdown()


def test_a_write_that_fails_part_way_is_cut_back_and_reported(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    """Disk full in the middle of a record: the call fails loudly, and every record before and after is delivered."""
    import errno

    import re

    from otel_decisions import _runtime
    from otel_decisions.delivery import _spool
    from otel_decisions.errors import OtelDecisionsError

    settings = DecisionSettings(data_dir=tmp_path)
    exporter = InMemorySpanExporter()
    processor = DurableSpanProcessor([exporter], settings)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    before = _decision(tracer)

    real_write = _spool.os.write
    calls = {"n": 0}

    def disk_full_once(fd: int, data: bytes) -> int:
        calls["n"] += 1
        if calls["n"] == 1:
            real_write(fd, bytes(data)[: len(data) // 2])  # a torn half-record reaches the file
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(fd, data)

    monkeypatch.setattr(_spool.os, "write", disk_full_once)
    _decision(tracer)  # on_end never raises into span.end(): the refusal goes to the recording call
    refusal = _runtime.take_refusal()
    assert isinstance(refusal, OtelDecisionsError)
    assert re.search("could not write the decision spool.*not kept", str(refusal))
    assert _runtime.take_refusal() is None  # taken once
    after = _decision(tracer)
    monkeypatch.setattr(_spool.os, "write", real_write)
    assert processor.force_flush(30_000)
    delivered = sorted(s.attributes[semconv.DECISION_ID] for s in exporter.get_finished_spans())
    assert delivered == sorted([before, after])
    status = delivery_status(settings)
    assert status.quarantined_regions == 0 and status.pending == 0
    provider.shutdown()


def test_the_shipper_yields_to_a_recording_burst_but_not_to_a_recorder_waiting_for_it(tmp_path: Path) -> None:
    """In a burst the shipper leaves the interpreter to the recording calls; at the spool quota they wait
    for the shipper, so yielding to them would slow both (a 1M-row batch hits the quota)."""
    import time

    settings = DecisionSettings(data_dir=tmp_path)
    processor = DurableSpanProcessor([], settings, ship=False)
    provider = TracerProvider()
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("t")
    shipper, writer = processor.shipper, processor.writer
    shipper._recording_burst()  # start counting
    for _ in range(300):
        _decision(tracer)
    assert shipper._in_recording_burst()
    writer.quota_waited_at = time.monotonic()  # a recording call waited for space just now
    assert not shipper._in_recording_burst() and not shipper._recording_burst()
    provider.shutdown()
