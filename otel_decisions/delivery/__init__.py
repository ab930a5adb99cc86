"""Durable delivery of decision and review spans (placeholder until the delivery issue lands).

Contract used by :func:`otel_decisions.configure`:

- ``build_durable_processor(exporters, settings) -> SpanProcessor`` handles the spans for which
  ``is_durable_span(span, settings)`` is true;
- every other span goes to the SDK's BatchSpanProcessor.
"""

from __future__ import annotations

from collections.abc import Sequence

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter

from otel_decisions import semconv
from otel_decisions.config import DecisionSettings


def is_durable_span(span: ReadableSpan, settings: DecisionSettings) -> bool:
    """Decision and review spans, and any span named in ``settings.durable_span_names``."""
    name = span.name
    return (
        name.startswith(semconv.DECISION_SPAN_PREFIX)
        or name == semconv.REVIEW_SPAN_NAME
        or name in settings.durable_span_names
    )


def build_durable_processor(exporters: Sequence[SpanExporter], settings: DecisionSettings) -> SpanProcessor:
    """Placeholder: synchronous export on span end (replaced by the spool-backed processor)."""
    from opentelemetry.sdk.trace import SynchronousMultiSpanProcessor

    multi = SynchronousMultiSpanProcessor()
    for exporter in exporters:
        multi.add_span_processor(SimpleSpanProcessor(exporter))
    return multi
