"""Spool record format: a span in, bytes out, and back to a real SDK ``ReadableSpan``.

A segment file is ``MAGIC`` followed by frames::

    <u32 little-endian payload length> <u32 crc32 of kind+payload> <u8 kind> <payload>

``kind`` is ``R`` (a resource definition), ``S`` (an instrumentation-scope definition) or
``P`` (a span). Resource and scope are written once per segment, before the first span that
uses them, so every segment decodes on its own. Payloads are pickle (protocol 5) of plain
tuples, dicts, strings and numbers only, and are read back with an unpickler that refuses
every global: a spool file can never make the reader import or call anything.

Pickle is used because it is the fastest encoder in the standard library (C, ~3 µs per
decision span), which keeps the recording call cheap; the OTLP protobuf encoding is done
by the exporter on the shipping side, off the recording path.

Example::

    from otel_decisions.delivery._codec import SpanEncoder, SegmentDecoder, iter_frames
    frames = SpanEncoder().encode(span)          # bytes to append (defs + span frame)
    spans = SegmentDecoder().decode_frames(iter_frames(MAGIC + frames, len(MAGIC)).records)
"""

from __future__ import annotations

import io
import pickle
import struct
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, TraceFlags, TraceState
from opentelemetry.trace.status import Status, StatusCode
from opentelemetry.util.types import Attributes

from otel_decisions._sdk_layout import frozen_attributes, plain_attributes, span_fields

MAGIC = b"ODSPOOL\x01"
HEADER = struct.Struct("<IIB")  # length, crc32, kind
HEADER_SIZE = HEADER.size
KIND_RESOURCE = 0x52  # 'R'
KIND_SCOPE = 0x53  # 'S'
KIND_SPAN = 0x50  # 'P'
_KINDS = frozenset({KIND_RESOURCE, KIND_SCOPE, KIND_SPAN})
MAX_RECORD_BYTES = 64 << 20
"""A frame longer than this is corrupt by definition (no span is 64 MiB)."""

_SPAN_KINDS = {kind.value: kind for kind in SpanKind}
_STATUS_CODES = {code.value: code for code in StatusCode}
_UNSET = Status(StatusCode.UNSET)


def frame(kind: int, payload: bytes) -> bytes:
    """One framed record: header (length, crc32 over kind+payload, kind) then payload."""
    crc = zlib.crc32(payload, zlib.crc32(bytes((kind,))))
    return HEADER.pack(len(payload), crc, kind) + payload


_PLAIN_TYPES = frozenset({str, int, float, bool, bytes, type(None)})


def _plain_value(value: Any) -> Any:
    """*value* as exact builtin types: the unpickler refuses any class, and attribute values may be
    subclasses (e.g. Prefect's ``StateType`` str enum). Keeps the content the OTLP encoder would send."""
    kind = type(value)
    if kind in _PLAIN_TYPES:
        return value
    if kind is tuple or kind is list:
        return tuple(_plain_value(item) for item in value)
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, bytes):
        return bytes(value)
    return repr(value)


def _plain_dict(mapping: Any) -> dict[str, Any]:
    """A plain copy of an attribute mapping (fast when every value is already a builtin)."""
    for value in mapping.values():
        kind = type(value)
        if kind in _PLAIN_TYPES or (kind is tuple and all(type(item) in _PLAIN_TYPES for item in value)):
            continue
        return {str.__str__(key): _plain_value(item) for key, item in mapping.items()}
    return dict(mapping)


def _attrs(attributes: Attributes) -> dict[str, Any]:
    """A plain dict copy of event or link attributes."""
    return _plain_dict(plain_attributes(attributes)) if attributes else {}


def _ctx(context: SpanContext) -> tuple[int, int, int, tuple[tuple[str, str], ...] | None, bool]:
    state = context.trace_state
    return (
        context.trace_id,
        context.span_id,
        int(context.trace_flags),
        tuple(state.items()) if state else None,
        context.is_remote,
    )


def _record(span: ReadableSpan) -> tuple[Any, ...]:
    """The picklable record of a finished span (builtin types only)."""
    (
        name,
        context,
        parent,
        kind,
        start,
        end,
        status,
        attributes,
        dropped_attributes,
        events,
        dropped_events,
        links,
        dropped_links,
    ) = span_fields(span)
    return (
        name,
        _ctx(context) if context is not None else None,
        _ctx(parent) if parent is not None else None,
        kind.value,
        start,
        end,
        status.status_code.value,
        status.description,
        _plain_dict(attributes),
        dropped_attributes,
        tuple((e.name, e.timestamp, _attrs(e.attributes)) for e in events) if events else (),
        dropped_events,
        tuple((_ctx(link.context), _attrs(link.attributes)) for link in links) if links else (),
        dropped_links,
    )


def record_payload(
    name: str,
    context: tuple[int, int, int, tuple[tuple[str, str], ...] | None],
    parent: tuple[int, int, int, tuple[tuple[str, str], ...] | None, bool] | None,
    time_ns: int,
    attributes: dict[str, Any],
) -> bytes:
    """The span payload :meth:`SpanEncoder.span_payload` makes for an ended INTERNAL span with no events,
    links or status, started and ended at *time_ns*: a decision record written without an SDK span.
    *context* is (trace id, span id, flags, trace state items); *attributes* hold builtin values only
    (sequences as tuples), as the SDK keeps them."""
    trace_id, span_id, flags, state = context
    return pickle.dumps(
        (
            name,
            (trace_id, span_id, flags, state, False),
            parent,
            0,
            time_ns,
            time_ns,
            0,
            None,
            attributes,
            0,
            (),
            0,
            (),
            0,
        ),
        protocol=5,
    )


class SpanEncoder:
    """Encodes spans to frames, writing each resource/scope definition once per segment.

    Not thread-safe: the spool writer calls :meth:`encode` under its lock.
    """

    def __init__(self) -> None:
        self._resources: dict[int, tuple[Resource, int]] = {}
        self._scopes: dict[int, tuple[InstrumentationScope | None, int]] = {}
        self._defined_resources: set[int] = set()
        self._defined_scopes: set[int] = set()

    def new_segment(self) -> None:
        """Forget which definitions the current segment holds (the next span re-defines them)."""
        self._defined_resources.clear()
        self._defined_scopes.clear()

    def span_payload(self, span: ReadableSpan) -> tuple[bytes, Resource, InstrumentationScope | None]:
        """The span's own payload (no definitions): safe to compute outside the writer lock."""
        return pickle.dumps(_record(span), protocol=5), span.resource, span.instrumentation_scope

    def frames_for(self, payload: bytes, resource: Resource, scope: InstrumentationScope | None) -> bytes:
        """Frames to append: any missing definitions, then the span frame (which names them by index)."""
        parts: list[bytes] = []
        entry = self._resources.get(id(resource))
        if entry is None or entry[0] is not resource:
            entry = (resource, len(self._resources))
            self._resources[id(resource)] = entry
        resource_index = entry[1]
        if resource_index not in self._defined_resources:
            definition = (resource_index, _plain_dict(resource.attributes), resource.schema_url)
            parts.append(frame(KIND_RESOURCE, pickle.dumps(definition, protocol=5)))
            self._defined_resources.add(resource_index)
        scope_entry = self._scopes.get(id(scope))
        if scope_entry is None or scope_entry[0] is not scope:
            scope_entry = (scope, len(self._scopes))
            self._scopes[id(scope)] = scope_entry
        scope_index = scope_entry[1]
        if scope_index not in self._defined_scopes:
            if scope is None:
                scope_def: tuple[Any, ...] = (scope_index, None, None, None, None)
            else:
                scope_def = (
                    scope_index,
                    scope.name,
                    scope.version,
                    scope.schema_url,
                    _plain_dict(scope.attributes) if scope.attributes else None,
                )
            parts.append(frame(KIND_SCOPE, pickle.dumps(scope_def, protocol=5)))
            self._defined_scopes.add(scope_index)
        # resource and scope indices ride in the frame payload prefix: 2 x u32 then the pickle
        parts.append(frame(KIND_SPAN, struct.pack("<II", resource_index, scope_index) + payload))
        return b"".join(parts)

    def frames_many(self, payloads: Sequence[bytes], resource: Resource, scope: InstrumentationScope | None) -> bytes:
        """:meth:`frames_for` of each payload (all of one resource and scope), joined."""
        if not payloads:
            return b""
        parts = [self.frames_for(payloads[0], resource, scope)]  # any definitions, then the first span
        prefix = struct.pack("<II", self._resources[id(resource)][1], self._scopes[id(scope)][1])
        start = zlib.crc32(prefix, zlib.crc32(bytes((KIND_SPAN,))))
        pack, crc32, extra = HEADER.pack, zlib.crc32, len(prefix)
        for payload in payloads[1:]:
            parts.append(pack(extra + len(payload), crc32(payload, start), KIND_SPAN))
            parts.append(prefix)
            parts.append(payload)
        return b"".join(parts)

    def encode(self, span: ReadableSpan) -> bytes:
        """Definitions (if new in this segment) and the span frame."""
        payload, resource, scope = self.span_payload(span)
        return self.frames_for(payload, resource, scope)


class _PlainUnpickler(pickle.Unpickler):
    """Unpickler that refuses every global: only builtin containers and scalars come back."""

    def find_class(self, module: str, name: str) -> Any:  # noqa: D401
        raise pickle.UnpicklingError(f"spool record refers to {module}.{name}; refused")


def _loads(data: bytes | memoryview) -> Any:
    return _PlainUnpickler(io.BytesIO(data)).load()


@dataclass
class FrameScan:
    """Result of walking frames from an offset: complete records, where valid data ends, and why."""

    records: list[tuple[int, int, memoryview]] = field(default_factory=list)
    """(kind, end offset of the frame, payload)"""
    end: int = 0
    """Offset just past the last complete valid frame."""
    problem: str | None = None
    """None (clean end of data), 'partial' (a frame cut short: torn tail or still being
    written) or 'corrupt' (bad length, kind or checksum)."""


def iter_frames(
    data: bytes | memoryview, start: int, limit: int | None = None, spans_limit: int | None = None
) -> FrameScan:
    """Walk frames in ``data`` from ``start``; stop at the end, at a bad frame, or after ``spans_limit`` spans."""
    view = memoryview(data)
    size = len(view) if limit is None else min(limit, len(view))
    scan = FrameScan(end=start)
    offset = start
    spans = 0
    unpack = HEADER.unpack_from
    crc32 = zlib.crc32
    while offset < size:
        if size - offset < HEADER_SIZE:
            scan.problem = "partial"
            break
        length, crc, kind = unpack(view, offset)
        if kind not in _KINDS or length > MAX_RECORD_BYTES:
            scan.problem = "corrupt"
            break
        body_start = offset + HEADER_SIZE
        body_end = body_start + length
        if body_end > size:
            scan.problem = "partial"
            break
        payload = view[body_start:body_end]
        if crc32(payload, crc32(bytes((kind,)))) != crc:
            scan.problem = "corrupt"
            break
        scan.records.append((kind, body_end, payload))
        offset = body_end
        scan.end = offset
        if kind == KIND_SPAN:
            spans += 1
            if spans_limit is not None and spans >= spans_limit:
                break
    return scan


def resync(data: bytes | memoryview, start: int) -> int | None:
    """The next offset after ``start`` where a valid frame begins (None if none): skips a corrupt region."""
    view = memoryview(data)
    size = len(view)
    offset = start + 1
    while offset + HEADER_SIZE <= size:
        length, crc, kind = HEADER.unpack_from(view, offset)
        if kind in _KINDS and length <= MAX_RECORD_BYTES and offset + HEADER_SIZE + length <= size:
            payload = view[offset + HEADER_SIZE : offset + HEADER_SIZE + length]
            if zlib.crc32(payload, zlib.crc32(bytes((kind,)))) == crc:
                return offset
        offset += 1
    return None


def count_spans(records: Iterable[tuple[int, int, memoryview]]) -> int:
    """How many of the records are spans."""
    return sum(1 for kind, _, _ in records if kind == KIND_SPAN)


def _context(values: tuple[Any, ...] | None) -> SpanContext | None:
    if values is None:
        return None
    trace_id, span_id, flags, state, is_remote = values
    return SpanContext(
        trace_id,
        span_id,
        is_remote,
        TraceFlags(flags),
        TraceState(list(state)) if state else None,
    )


class SegmentDecoder:
    """Turns the frames of one segment back into ``ReadableSpan`` objects.

    Resources and scopes are shared objects across segments (cached by content) so an
    exporter that groups spans by resource sees one resource, as it would in-process.
    """

    _resource_cache: dict[bytes, Resource] = {}
    _scope_cache: dict[bytes, InstrumentationScope | None] = {}

    def __init__(self) -> None:
        self.resources: dict[int, Resource] = {}
        self.scopes: dict[int, InstrumentationScope | None] = {}

    def learn(self, kind: int, payload: memoryview) -> None:
        """Remember a resource or scope definition."""
        key = bytes(payload)
        if kind == KIND_RESOURCE:
            index, attributes, schema_url = _loads(key)
            resource = self._resource_cache.get(key)
            if resource is None:
                resource = Resource(attributes, schema_url)
                self._resource_cache[key] = resource
            self.resources[index] = resource
        elif kind == KIND_SCOPE:
            index, name, version, schema_url, attributes = _loads(key)
            if key not in self._scope_cache:
                self._scope_cache[key] = (
                    None if name is None else InstrumentationScope(name, version, schema_url, attributes)
                )
            self.scopes[index] = self._scope_cache[key]

    def decode_span(self, payload: memoryview) -> ReadableSpan:
        """One span frame payload to a ReadableSpan (its definitions must have been learned)."""
        resource_index, scope_index = struct.unpack_from("<II", payload, 0)
        (
            name,
            context,
            parent,
            kind,
            start_time,
            end_time,
            status_code,
            status_description,
            attributes,
            dropped_attributes,
            events,
            dropped_events,
            links,
            dropped_links,
        ) = _loads(payload[8:])
        bounded = frozen_attributes(attributes, dropped_attributes)
        event_list: Any = tuple(
            Event(ev_name, frozen_attributes(ev_attrs, 0), ev_ts) for ev_name, ev_ts, ev_attrs in events
        )
        if dropped_events:
            event_list = BoundedList.from_seq(None, event_list)
            event_list.dropped = dropped_events
        link_list: Any = tuple(Link(_context(ctx), frozen_attributes(link_attrs, 0)) for ctx, link_attrs in links)  # type: ignore[arg-type]
        if dropped_links:
            link_list = BoundedList.from_seq(None, link_list)
            link_list.dropped = dropped_links
        status = (
            _UNSET
            if status_code == StatusCode.UNSET.value and status_description is None
            else Status(_STATUS_CODES[status_code], status_description)
        )
        scope = self.scopes.get(scope_index)
        return ReadableSpan(
            name=name,
            context=_context(context),
            parent=_context(parent),
            resource=self.resources[resource_index],
            attributes=bounded,
            events=event_list,
            links=link_list,
            kind=_SPAN_KINDS[kind],
            status=status,
            start_time=start_time,
            end_time=end_time,
            instrumentation_scope=scope,
        )

    def decode_frames(self, records: Iterable[tuple[int, int, memoryview]]) -> list[ReadableSpan]:
        """Learn definitions and decode spans, in order."""
        spans: list[ReadableSpan] = []
        for kind, _, payload in records:
            if kind == KIND_SPAN:
                spans.append(self.decode_span(payload))
            else:
                self.learn(kind, payload)
        return spans
