"""Span → ``otel_traces`` row, exactly as the collector's clickhouse exporter writes it.

Source of truth, OpenTelemetry Collector contrib **v0.161.0**:

- ``exporter/clickhouseexporter/exporter_traces.go`` (``pushTraceData``, ``convertEvents``,
  ``convertLinks``): column order and values;
- ``exporter/clickhouseexporter/internal/util.go`` (``AttributesToMap``, ``GetServiceName``):
  every attribute becomes ``pcommon.Value.AsString()``;
- ``go.opentelemetry.io/collector/pdata@v1.67.0/pcommon/value.go`` (``AsString``,
  ``float64AsString``, ``marshalJSONNoHTMLEscape``): bool → ``true``/``false``, int → decimal,
  double → ES6 shortest form (``1``, ``0.25``, ``1e-7``, ``1e+21``), slices and maps → JSON
  (Go ``encoding/json``, no HTML escaping, map keys sorted), bytes → base64;
- ``internal/coreinternal/traceutil/traceutil.go``: ids as lower-case hex, all-zero ids as ``""``;
- ``pdata/ptrace/span_kind.go`` / ``status_code.go``: ``Internal``/``Server``/…, ``Unset``/``Ok``/``Error``.

What the Python OTLP exporter would send (and so what the collector sees) is reproduced here:
status message only with an error status, trace state as ``k=v,k2=v2``.

Example::

    from otel_decisions.store.mapping import span_to_row, TRACES_COLUMNS
    row = span_to_row(readable_span)          # list aligned with TRACES_COLUMNS
    table = spans_to_arrow(readable_spans)    # the same rows, column-oriented, for client.insert_arrow
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import accumulate, chain
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from otel_decisions import semconv
from otel_decisions._sdk_layout import plain_attributes, span_containers
from otel_decisions.integrity import attribute_to_string
from otel_decisions.integrity._render import _go_float

__all__ = [
    "TRACES_COLUMNS",
    "TRACES_INSERT_TYPES",
    "span_to_row",
    "spans_to_arrow",
    "attribute_to_string",
    "attributes_to_map",
]

# traces_insert.sql column list, in order.
TRACES_COLUMNS: tuple[str, ...] = (
    "Timestamp",
    "TraceId",
    "SpanId",
    "ParentSpanId",
    "TraceState",
    "SpanName",
    "SpanKind",
    "ServiceName",
    "ResourceAttributes",
    "ScopeName",
    "ScopeVersion",
    "SpanAttributes",
    "Duration",
    "StatusCode",
    "StatusMessage",
    "Events.Timestamp",
    "Events.Name",
    "Events.Attributes",
    "Links.TraceId",
    "Links.SpanId",
    "Links.TraceState",
    "Links.Attributes",
)

# Wire types for inserts: plain String instead of LowCardinality(String) keys lets the client skip
# building dictionaries in Python; ClickHouse converts on insert (the stored types are the DDL's).
TRACES_INSERT_TYPES: tuple[str, ...] = (
    "DateTime64(9)",
    "String",
    "String",
    "String",
    "String",
    "String",
    "String",
    "String",
    "Map(String, String)",
    "String",
    "String",
    "Map(String, String)",
    "UInt64",
    "String",
    "String",
    "Array(DateTime64(9))",
    "Array(String)",
    "Array(Map(String, String))",
    "Array(String)",
    "Array(String)",
    "Array(String)",
    "Array(Map(String, String))",
)

_SPAN_KIND = {
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}
_STATUS = {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}


def attributes_to_map(attributes: Mapping[str, Any] | None) -> dict[str, str]:
    """``internal.AttributesToMap``: every value as its ``AsString()``, insertion order kept."""
    if not attributes:
        return {}
    convert = attribute_to_string
    return {key: value if type(value) is str else convert(value) for key, value in plain_attributes(attributes).items()}


def _hex_trace_id(trace_id: int) -> str:
    return "" if not trace_id else format(trace_id, "032x")


def _hex_span_id(span_id: int) -> str:
    return "" if not span_id else format(span_id, "016x")


def _trace_state(state: Any) -> str:
    # Python OTLP exporter: ",".join(f"{k}={v}") of the TraceState; collector AsRaw() keeps it.
    if not state:
        return ""
    return ",".join(f"{key}={value}" for key, value in state.items())


_resource_cache: dict[int, tuple[Any, dict[str, str], str]] = {}


def _resource_row(resource: Any) -> tuple[dict[str, str], str]:
    # Spans of one provider share one Resource object: convert it once.
    cached = _resource_cache.get(id(resource))
    if cached is not None and cached[0] is resource:
        return cached[1], cached[2]
    attrs = resource.attributes if resource is not None else {}
    service = attrs.get(semconv.SERVICE_NAME)
    entry = (resource, attributes_to_map(attrs), "" if service is None else attribute_to_string(service))
    if len(_resource_cache) > 64:
        _resource_cache.clear()
    _resource_cache[id(resource)] = entry
    return entry[1], entry[2]


def span_to_row(span: ReadableSpan) -> list[Any]:
    """One ``otel_traces`` row (aligned with :data:`TRACES_COLUMNS`) for a finished span."""
    context = span.context
    resource_map, service = _resource_row(span.resource)
    scope = span.instrumentation_scope
    start = span.start_time or 0
    end = span.end_time or start
    status = span.status
    status_code = status.status_code if status is not None else StatusCode.UNSET
    # The Python SDK only keeps a description with an error status; OTLP sends "" otherwise.
    message = (status.description or "") if status is not None and status_code is StatusCode.ERROR else ""
    # The public properties copy (tuple(...), MappingProxyType); read the SDK's fields when present.
    events = getattr(span, "_events", None)
    if events is None:
        events = span.events or ()
    links = getattr(span, "_links", None)
    if links is None:
        links = span.links or ()
    attributes = getattr(span, "_attributes", None)
    if attributes is None:
        attributes = span.attributes
    parent = span.parent
    trace_state = context.trace_state if context is not None else None
    row = [
        start,
        _hex_trace_id(context.trace_id if context is not None else 0),
        _hex_span_id(context.span_id if context is not None else 0),
        _hex_span_id(parent.span_id) if parent is not None else "",
        _trace_state(trace_state) if trace_state else "",
        span.name,
        _SPAN_KIND.get(span.kind, "Unspecified"),
        service,
        resource_map,
        scope.name if scope is not None else "",
        (scope.version or "") if scope is not None else "",
        attributes_to_map(attributes),
        max(0, end - start),
        _STATUS.get(status_code, "Unset"),
        message,
    ]
    if events:
        row += [
            [event.timestamp for event in events],
            [event.name for event in events],
            [attributes_to_map(event.attributes) for event in events],
        ]
    else:
        row += [[], [], []]
    if links:
        row += [
            [_hex_trace_id(link.context.trace_id) for link in links],
            [_hex_span_id(link.context.span_id) for link in links],
            [_trace_state(link.context.trace_state) for link in links],
            [attributes_to_map(link.attributes) for link in links],
        ]
    else:
        row += [[], [], [], []]
    return row


def _flat_maps(maps: list[Any], convert: Any) -> tuple[list[int], list[str], list[str]]:
    """Offsets, keys and ``AsString()`` values of *maps*, flattened (the parts of an Arrow MapArray)."""
    offsets = list(accumulate(map(len, maps), initial=0))
    keys = list(chain.from_iterable(maps))
    # Straight to the converter of each exact type (the common ones skip attribute_to_string's dispatch).
    by_type = {float: _go_float, int: int.__repr__, bool: _BOOL_TEXT.__getitem__, tuple: convert.tuple_lookup}
    pick = by_type.get
    flat = list(chain.from_iterable(map(_values, maps)))
    try:
        values = [value if value.__class__ is str else pick(value.__class__, convert)(value) for value in flat]
    except TypeError:  # an unhashable tuple item: the careful path for every value
        values = [value if value.__class__ is str else convert(value) for value in flat]
    return offsets, keys, values


_BOOL_TEXT = {True: "true", False: "false"}


def _values(mapping: Any) -> Any:
    return mapping.values()


class _ArrayTexts(dict[tuple[Any, ...], str]):
    """tuple -> ``attribute_to_string`` text; remembers string arrays (a batch repeats few of them).

    Only all-str tuples are stored: a key equal to one of them holds the same strings, whereas
    ``(1,)``, ``(1.0,)`` and ``(True,)`` are equal but render differently, so they are never stored.
    Lookups of stored arrays are plain C-level dict hits.
    """

    def __missing__(self, value: tuple[Any, ...]) -> str:
        text = attribute_to_string(value)
        if len(self) < 4096 and all(item.__class__ is str for item in value):
            self[value] = text
        return text


def _cached_converter() -> Any:
    """``attribute_to_string`` with string-array renderings remembered (see :class:`_ArrayTexts`)."""
    texts = _ArrayTexts()
    lookup = texts.__getitem__
    convert = attribute_to_string

    def cached(value: Any) -> str:
        if value.__class__ is not tuple:
            return convert(value)
        try:
            return lookup(value)
        except TypeError:  # an unhashable item
            return convert(value)

    cached.tuple_lookup = lookup  # type: ignore[attr-defined]
    return cached


def _hex128(value: int) -> str:
    return value.to_bytes(16, "big").hex() if value else ""


def _hex64(value: int) -> str:
    return value.to_bytes(8, "big").hex() if value else ""


def spans_to_arrow(spans: Sequence[ReadableSpan]) -> Any:
    """The :func:`span_to_row` rows of *spans* as one ``pyarrow.Table`` (columns :data:`TRACES_COLUMNS`).

    Same values, built column by column: no per-row lists or dicts, maps as flat key/value
    arrays. Inserted with ``client.insert_arrow`` the data leaves Python through Arrow's C++
    writer instead of clickhouse-connect's Python Native serialiser. Each column is one
    comprehension (or a C-level chain) over the batch: this is most of the exporter's Python time.
    """
    import pyarrow as pa

    string, int32, timestamp = pa.string(), pa.int32(), pa.timestamp("ns")
    convert = _cached_converter()
    spans = list(spans)

    # Spans of one provider share one Resource: map each distinct one once, then index into them.
    resources = [span.resource for span in spans]
    positions: dict[int, int] = {}
    resource_index = [positions.setdefault(id(resource), len(positions)) for resource in resources]
    distinct = list({id(resource): resource for resource in resources}.values())
    resource_rows = [_resource_row(resource) for resource in distinct]
    take = pa.array(resource_index, int32)
    res_offsets, res_keys, res_values = _flat_maps([row[0] for row in resource_rows], convert)
    resource_maps = pa.MapArray.from_arrays(
        pa.array(res_offsets, int32), pa.array(res_keys, string), pa.array(res_values, string)
    ).take(take)
    services = pa.array([row[1] for row in resource_rows], string).take(take)

    contexts = [span.context for span in spans]
    if None in contexts:
        contexts = [context if context is not None else _NO_CONTEXT for context in contexts]
    parents = [span.parent for span in spans]
    starts = [span.start_time or 0 for span in spans]
    ends = [span.end_time or 0 for span in spans]
    kinds = {id(kind): name for kind, name in _SPAN_KIND.items()}  # by id(): Enum.__hash__ is a Python call
    statuses = [span.status for span in spans]
    status_names = {id(code): name for code, name in _STATUS.items()}
    error = StatusCode.ERROR
    scopes = [span.instrumentation_scope for span in spans]

    # The SDK's own containers, not the public properties (which copy into tuples and proxies).
    containers = [span_containers(span) for span in spans]
    attributes = [attributes for attributes, _events, _links in containers]
    attr_offsets, attr_keys, attr_values = _flat_maps(attributes, convert)

    # Events and links: most spans have none; flat per-item columns under per-span list offsets.
    events = [events for _attributes, events, _links in containers]
    links = [links for _attributes, _events, links in containers]
    all_events = list(chain.from_iterable(events))
    all_links = list(chain.from_iterable(links))
    event_offsets = pa.array(list(accumulate(map(len, events), initial=0)), int32)
    link_offsets = pa.array(list(accumulate(map(len, links), initial=0)), int32)
    ev_offsets, ev_keys, ev_values = _flat_maps([plain_attributes(event.attributes) for event in all_events], convert)
    ln_offsets, ln_keys, ln_values = _flat_maps([plain_attributes(link.attributes) for link in all_links], convert)

    def map_array(offsets: list[int], keys: list[str], values: list[str]) -> Any:
        return pa.MapArray.from_arrays(pa.array(offsets, int32), pa.array(keys, string), pa.array(values, string))

    def strings(values: list[str]) -> Any:
        return pa.array(values, string)

    columns = [
        pa.array(starts, timestamp),
        strings([_hex128(context.trace_id) for context in contexts]),
        strings([_hex64(context.span_id) for context in contexts]),
        strings([_hex64(parent.span_id) if parent is not None else "" for parent in parents]),
        strings([_trace_state(context.trace_state) if context.trace_state else "" for context in contexts]),
        strings([span.name for span in spans]),
        strings([kinds.get(id(span.kind), "Unspecified") for span in spans]),
        services,
        resource_maps,
        strings([scope.name if scope is not None else "" for scope in scopes]),
        strings([(scope.version or "") if scope is not None else "" for scope in scopes]),
        map_array(attr_offsets, attr_keys, attr_values),
        pa.array([end - start if end > start else 0 for start, end in zip(starts, ends, strict=True)], pa.uint64()),
        strings(
            [
                status_names.get(id(status.status_code), "Unset") if status is not None else "Unset"
                for status in statuses
            ]
        ),
        strings(
            [
                (status.description or "") if status is not None and status.status_code is error else ""
                for status in statuses
            ]
        ),
        pa.ListArray.from_arrays(event_offsets, pa.array([event.timestamp for event in all_events], timestamp)),
        pa.ListArray.from_arrays(event_offsets, strings([event.name for event in all_events])),
        pa.ListArray.from_arrays(event_offsets, map_array(ev_offsets, ev_keys, ev_values)),
        pa.ListArray.from_arrays(link_offsets, strings([_hex_trace_id(link.context.trace_id) for link in all_links])),
        pa.ListArray.from_arrays(link_offsets, strings([_hex_span_id(link.context.span_id) for link in all_links])),
        pa.ListArray.from_arrays(link_offsets, strings([_trace_state(link.context.trace_state) for link in all_links])),
        pa.ListArray.from_arrays(link_offsets, map_array(ln_offsets, ln_keys, ln_values)),
    ]
    return pa.Table.from_arrays(columns, names=list(TRACES_COLUMNS))


class _NoContext:
    trace_id = 0
    span_id = 0
    trace_state = None


_NO_CONTEXT = _NoContext()
