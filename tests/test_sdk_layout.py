"""The SDK internals ``otel_decisions/_sdk_layout.py`` reads equal the SDK's public API.

opentelemetry-sdk is pinned exactly; an SDK release that moves one of these fields fails here.
"""

from __future__ import annotations

from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import Link, SpanContext, Status, StatusCode

from otel_decisions._sdk_layout import frozen_attributes, plain_attributes, span_containers, span_fields
from otel_decisions.delivery._codec import MAGIC, SegmentDecoder, SpanEncoder, iter_frames


def _spans():
    memory = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_attributes=4, max_events=2, max_links=1))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("layout")
    linked = SpanContext(0x1234, 0x56, is_remote=True)
    with tracer.start_as_current_span("parent"):
        span = tracer.start_span("child", attributes={"a": 1, "b": "x", "c": (1.5, 2.5), "d": True, "e": "dropped"},
                                 links=[Link(linked, {"k": "v"}), Link(linked)])
        for i in range(3):
            span.add_event(f"event-{i}", {"i": i})
        span.set_status(Status(StatusCode.ERROR, "failed"))
        span.end()
    tracer.start_span("bare").end()
    return list(memory.get_finished_spans())


def test_the_internals_read_equal_the_public_properties() -> None:
    for span in _spans():
        attributes, events, links = span_containers(span)
        assert dict(attributes) == dict(span.attributes) and list(attributes) == list(span.attributes)
        assert tuple(events) == span.events and tuple(links) == span.links
        fields = span_fields(span)
        assert fields[:7] == (span.name, span.context, span.parent, span.kind, span.start_time, span.end_time,
                              span.status)
        assert dict(fields[7]) == dict(span.attributes)
        assert (fields[8], tuple(fields[9]), fields[10], tuple(fields[11]), fields[12]) == (
            span.dropped_attributes, span.events, span.dropped_events, span.links, span.dropped_links)
    child = next(s for s in _spans() if s.name == "child")
    assert (child.dropped_attributes, child.dropped_events, child.dropped_links) == (1, 1, 1)  # limits exercised


def test_frozen_attributes_are_immutable_and_equal() -> None:
    frozen = frozen_attributes({"a": 1, "b": ("x",)}, 2)
    assert dict(frozen) == {"a": 1, "b": ("x",)} and frozen.dropped == 2
    assert plain_attributes(frozen) == {"a": 1, "b": ("x",)}
    try:
        frozen["c"] = 3
    except TypeError:
        pass
    else:
        raise AssertionError("frozen attributes accepted a write")


def test_a_spooled_span_decodes_to_what_the_sdk_recorded() -> None:
    spans = _spans()
    encoder = SpanEncoder()
    data = b"".join(encoder.encode(span) for span in spans)
    decoded = SegmentDecoder().decode_frames(iter_frames(MAGIC + data, len(MAGIC)).records)
    for original, copy in zip(spans, decoded, strict=True):
        assert (copy.name, copy.context, copy.parent, copy.kind, copy.start_time, copy.end_time) == (
            original.name, original.context, original.parent, original.kind, original.start_time, original.end_time)
        assert dict(copy.attributes) == dict(original.attributes) and copy.dropped_attributes == original.dropped_attributes
        assert [(e.name, dict(e.attributes), e.timestamp) for e in copy.events] == [
            (e.name, dict(e.attributes), e.timestamp) for e in original.events]
        assert [(link.context, dict(link.attributes)) for link in copy.links] == [
            (link.context, dict(link.attributes)) for link in original.links]
        assert (copy.status.status_code, copy.status.description) == (original.status.status_code, original.status.description)


def test_a_processor_put_first_sees_spans_first_and_what_it_overwrites_is_what_later_ones_see() -> None:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    from otel_decisions._sdk_layout import overwrite_finished_span, prepend_span_processor

    seen: list[str] = []

    class Rename(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            seen.append("first")
            clean = ReadableSpan(name="clean", context=span.context, attributes={"a": 2},
                                 events=span.events[:1], status=Status(StatusCode.ERROR, "scrubbed"))
            assert overwrite_finished_span(span, clean)

    class Later(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            seen.append("later")

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(Later())
    provider.add_span_processor(SimpleSpanProcessor(memory))
    first = Rename()
    assert prepend_span_processor(provider, first) and prepend_span_processor(provider, first)  # idempotent
    live = provider.get_tracer("layout").start_span("secret", attributes={"a": 1})
    live.add_event("e1")
    live.add_event("e2")
    live.end()
    (exported,) = memory.get_finished_spans()
    assert seen == ["first", "later"]
    assert exported.name == "clean" and dict(exported.attributes) == {"a": 2}
    assert [e.name for e in exported.events] == ["e1"] and exported.status.description == "scrubbed"
    assert live.name == "secret" and live.attributes["a"] == 1  # the live span itself is untouched


def test_a_concurrent_processor_chain_cannot_be_prepended_to() -> None:
    from opentelemetry.sdk.trace import ConcurrentMultiSpanProcessor, SpanProcessor

    from otel_decisions._sdk_layout import prepend_span_processor

    provider = TracerProvider(active_span_processor=ConcurrentMultiSpanProcessor())
    assert prepend_span_processor(provider, SpanProcessor()) is False


def test_an_overwritten_span_keeps_its_dropped_event_count() -> None:
    from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor

    from otel_decisions._sdk_layout import overwrite_finished_span, prepend_span_processor

    class Rewrite(SpanProcessor):
        def on_end(self, span: ReadableSpan) -> None:
            assert overwrite_finished_span(span, ReadableSpan(name="x", context=span.context, events=span.events))

    memory = InMemorySpanExporter()
    provider = TracerProvider(span_limits=SpanLimits(max_events=2))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    prepend_span_processor(provider, Rewrite())
    span = provider.get_tracer("layout").start_span("y")
    for i in range(4):
        span.add_event(f"e{i}")
    span.end()
    (exported,) = memory.get_finished_spans()
    assert exported.dropped_events == 2 and [e.name for e in exported.events] == ["e2", "e3"]


def test_spans_written_without_the_sdk_decode_as_the_spans_it_makes() -> None:
    """A record written with ``record_payload`` and the ids ``sampled_span_ids`` gives decodes to the span
    the SDK would have made (name, ids, flags, parent, kind, times, status, attributes, resource, scope)."""
    import pickle

    from opentelemetry.sdk.trace.sampling import ALWAYS_ON
    from opentelemetry.trace import TraceState

    from otel_decisions._sdk_layout import sampled_span_ids, unlimited_tracer
    from otel_decisions.delivery._codec import record_payload

    memory = InMemorySpanExporter()
    provider = TracerProvider(sampler=ALWAYS_ON)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("layout", "1.0")
    attrs = {"decision.id": "x", "decision.confidence": 0.5, "decision.reasons": ("a", "b"), "flag": True, "n": 3}
    parent_ctx = SpanContext(0xABC, 0xDEF, is_remote=True, trace_state=TraceState([("k", "v")]))
    from opentelemetry import trace as trace_api

    for parent in (None, parent_ctx):
        memory.clear()
        context = trace_api.set_span_in_context(trace_api.NonRecordingSpan(parent)) if parent else None
        tracer.start_span("decision t", context=context, attributes=attrs, start_time=7).end(end_time=7)
        (made,) = memory.get_finished_spans()
        resource, scope = unlimited_tracer(tracer, len(attrs))
        trace_ids, span_ids, flags = sampled_span_ids(tracer, parent, 1)
        state = tuple(parent.trace_state.items()) if parent else None
        parent_tuple = None if parent is None else (parent.trace_id, parent.span_id, int(parent.trace_flags), state,
                                                    parent.is_remote)
        payload = record_payload("decision t", (made.context.trace_id, span_ids[0], flags, state), parent_tuple, 7,
                                 dict(attrs))
        encoder = SpanEncoder()
        data = MAGIC + encoder.frames_many([payload, payload], resource, scope)
        decoded = SegmentDecoder().decode_frames(iter_frames(data, len(MAGIC)).records)
        assert len(decoded) == 2 and pickle.loads(payload)[0] == "decision t"
        for span in decoded:
            assert (span.name, span.kind, span.start_time, span.end_time, span.status.status_code) == (
                made.name, made.kind, made.start_time, made.end_time, made.status.status_code)
            assert span.context.trace_flags == made.context.trace_flags and span.context.is_remote is False
            assert span.context.trace_state == made.context.trace_state
            assert span.parent == made.parent
            assert dict(span.attributes) == dict(made.attributes) and list(span.attributes) == list(made.attributes)
            assert span.resource.attributes == made.resource.attributes
            assert span.instrumentation_scope == made.instrumentation_scope
            assert (span.events, span.links) == ((), ())
        if parent is not None:
            assert trace_ids == [parent.trace_id]
    limited = TracerProvider(span_limits=SpanLimits(max_span_attributes=3)).get_tracer("layout")
    assert unlimited_tracer(limited, 4) is None and unlimited_tracer(limited, 3) is not None
