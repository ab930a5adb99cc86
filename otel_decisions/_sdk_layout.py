"""The one place that reads opentelemetry-sdk internals, for the hot paths that copy finished spans.

The spool codec and the Arrow mapper read every finished span. The SDK's public properties copy on
each access (``ReadableSpan.attributes`` is a ``MappingProxy`` over ``BoundedAttributes``, whose
item access takes a lock per key; ``events``/``links`` build a new tuple), which costs more than the
rest of the copy. These helpers read the containers underneath instead. The SDK is pinned exactly
in ``pyproject.toml`` and ``tests/test_sdk_layout.py`` holds every helper equal to the public API,
so an SDK release that moves a field fails that test, not delivery. Any other ``ReadableSpan``
implementation takes the public path.

Example::

    from otel_decisions._sdk_layout import plain_attributes, span_containers

    attributes, events, links = span_containers(span)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util import BoundedList

_EMPTY: dict[str, Any] = {}


def plain_attributes(attributes: Any) -> Mapping[str, Any]:
    """The mapping to read *attributes* from: the dict under a ``BoundedAttributes`` when there is one
    (same content, same order, no lock per key); otherwise the mapping itself."""
    inner = getattr(attributes, "_dict", None)
    if inner.__class__ is dict:
        return inner
    return attributes or _EMPTY


def _items(container: Any) -> Sequence[Any]:
    """The deque under a ``BoundedList`` (its ``len()`` and iteration are Python-level calls)."""
    if container.__class__ is BoundedList:
        return container._dq  # type: ignore[attr-defined]  # noqa: SLF001 - pinned SDK layout
    return container or ()


def span_containers(span: ReadableSpan) -> tuple[Mapping[str, Any], Sequence[Any], Sequence[Any]]:
    """A finished span's attributes, events and links, read from the SDK's containers when present."""
    try:
        attributes = span._attributes  # noqa: SLF001 - pinned SDK layout (module docstring)
        events = span._events  # noqa: SLF001
        links = span._links  # noqa: SLF001
    except AttributeError:  # another ReadableSpan implementation
        return plain_attributes(span.attributes), tuple(span.events), tuple(span.links)
    return plain_attributes(attributes), _items(events), _items(links)


def span_fields(span: ReadableSpan) -> tuple[Any, ...]:
    """(name, context, parent, kind, start, end, status, attributes, dropped attributes, events, dropped
    events, links, dropped links) of a finished span, without the public properties' copies."""
    try:
        name = span._name  # noqa: SLF001 - pinned SDK layout (module docstring)
        context = span._context  # noqa: SLF001
        parent = span._parent  # noqa: SLF001
        kind = span._kind  # noqa: SLF001
        start, end = span._start_time, span._end_time  # noqa: SLF001
        status = span._status  # noqa: SLF001
        attributes, events, links = span._attributes, span._events, span._links  # noqa: SLF001
    except AttributeError:  # another ReadableSpan implementation
        return (
            span.name,
            span.context,
            span.parent,
            span.kind,
            span.start_time,
            span.end_time,
            span.status,
            plain_attributes(span.attributes),
            span.dropped_attributes,
            tuple(span.events),
            span.dropped_events,
            tuple(span.links),
            span.dropped_links,
        )
    return (
        name,
        context,
        parent,
        kind,
        start,
        end,
        status,
        plain_attributes(attributes),
        getattr(attributes, "dropped", 0),
        _items(events),
        getattr(events, "dropped", 0),
        _items(links),
        getattr(links, "dropped", 0),
    )


def frozen_attributes(values: dict[str, Any], dropped: int) -> BoundedAttributes:
    """An immutable ``BoundedAttributes`` holding *values* as they are.

    The values were validated by the SDK when first recorded: skip re-validation (the slow part of
    ``BoundedAttributes.__init__``) and fill the mapping directly.
    """
    bounded = BoundedAttributes(immutable=False)
    bounded._dict.update(values)  # noqa: SLF001 - pinned SDK layout (module docstring)
    bounded.dropped = dropped
    bounded._immutable = True  # noqa: SLF001
    return bounded


def overwrite_finished_span(span: ReadableSpan, clean: ReadableSpan) -> bool:
    """Give *span* — the ``ReadableSpan`` copy the SDK hands its processors at ``end()`` — the name,
    attributes, events, links and status of *clean*, so every processor after the caller sees *clean*'s.

    The copy shares the live span's containers, so only the references are replaced (the containers
    are not touched). Returns ``False`` (nothing changed) for another ``ReadableSpan`` implementation.
    """
    if type(span) is not ReadableSpan or type(clean) is not ReadableSpan:
        return False
    dropped = getattr(span._attributes, "dropped", 0)  # noqa: SLF001 - pinned SDK layout (module docstring)
    span._name = clean._name  # noqa: SLF001
    span._attributes = frozen_attributes(dict(plain_attributes(clean._attributes)), dropped)  # noqa: SLF001
    span._events = _keeping_dropped(clean._events, span._events)  # noqa: SLF001
    span._links = _keeping_dropped(clean._links, span._links)  # noqa: SLF001
    span._status = clean._status  # noqa: SLF001
    return True


def _keeping_dropped(items: Any, original: Any) -> Any:
    """*items* as a tuple, or as a ``BoundedList`` carrying *original*'s dropped count when it had one."""
    dropped = getattr(original, "dropped", 0)
    if not dropped:
        return tuple(_items(items))
    bounded: BoundedList[Any] = BoundedList(None)
    bounded.extend(_items(items))
    bounded.dropped = dropped
    return bounded


def prepend_span_processor(provider: Any, processor: Any) -> bool:
    """Put *processor* first in *provider*'s processors (an SDK ``TracerProvider`` whose processors run
    one after another), so it sees every finished span before any processor added earlier or later.
    Idempotent. Returns ``False`` when the provider is not laid out that way (e.g. a
    ``ConcurrentMultiSpanProcessor``, whose processors run in parallel)."""
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor

    multi = getattr(provider, "_active_span_processor", None)
    if type(multi) is not SynchronousMultiSpanProcessor:
        return False
    with multi._lock:  # noqa: SLF001 - pinned SDK layout (module docstring)
        current = multi._span_processors  # noqa: SLF001
        if current and current[0] is processor:
            return True
        multi._span_processors = (processor, *(p for p in current if p is not processor))  # noqa: SLF001
    return True


def span_processors(provider: Any) -> tuple[Any, ...] | None:
    """*provider*'s span processors in the order they run, when they run one after another (an SDK
    ``TracerProvider`` with its default chain); None otherwise."""
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor

    multi = getattr(provider, "_active_span_processor", None)
    if type(multi) is not SynchronousMultiSpanProcessor:
        return None
    return tuple(multi._span_processors)  # noqa: SLF001 - pinned SDK layout (module docstring)


def unlimited_tracer(tracer: Any, attributes: int) -> tuple[Any, Any] | None:
    """(resource, instrumentation scope) of an enabled SDK *tracer* whose spans keep *attributes*
    attributes of any length (its span limits cut nothing), else None: the spans it would make can be
    written without it, attribute for attribute."""
    from opentelemetry.sdk.trace import Tracer

    if type(tracer) is not Tracer:
        return None
    try:
        limits = tracer._span_limits  # noqa: SLF001 - pinned SDK layout (module docstring)
        if not tracer._is_enabled():  # noqa: SLF001
            return None
        scope = tracer._instrumentation_scope  # noqa: SLF001
    except AttributeError:
        return None
    if limits.max_span_attribute_length is not None or (
        limits.max_span_attributes is not None and limits.max_span_attributes < attributes
    ):
        return None
    return tracer.resource, scope


def sampled_span_ids(tracer: Any, parent: Any, count: int) -> tuple[list[int], list[int], int]:
    """Trace ids, span ids and trace flags of *count* sampled spans *tracer* would start under *parent* (a
    valid ``SpanContext``, or None for root spans), as ``Tracer.start_span`` makes them."""
    from opentelemetry.trace import TraceFlags

    generator = tracer.id_generator
    span_id = generator.generate_span_id
    span_ids = [span_id() for _ in range(count)]
    flags = TraceFlags.SAMPLED
    if parent is None:
        trace_id = generator.generate_trace_id
        trace_ids = [trace_id() for _ in range(count)]
        random_trace_id = generator.is_trace_id_random()
    else:
        trace_ids = [parent.trace_id] * count
        random_trace_id = parent.trace_flags.random_trace_id
    if random_trace_id:
        flags |= TraceFlags.RANDOM_TRACE_ID
    return trace_ids, span_ids, flags
