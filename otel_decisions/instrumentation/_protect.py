"""Run spans are scrubbed before *any* exporter sees them, whoever set up the tracer provider.

Prefect's run spans (and the instrumentor's own) carry run names templated from parameters, state
messages, exception messages and stack traces: none of that passed the privacy pipeline. The
:class:`RunSpanScrubber` (for spans of Prefect's and the instrumentor's scopes; other
instrumentations' spans reach the application's exporters as they are, and otel-decisions' own
exporters scrub them) is put first among an SDK provider's span processors — by ``configure()``,
by the ``opentelemetry-instrument`` configurator (which calls it), by
``PrefectInstrumentor().instrument(tracer_provider=p)`` on an application's own provider, and on the
global provider when a Prefect run span first starts there — so the application's own exporters
get the scrubbed span too. It replaces, in the span the SDK hands to processors, every value masked
for its run (:data:`otel_decisions.privacy.run_values`), free-text identifier patterns and values
under deny-listed keys. A provider it cannot be put first in (its processors run concurrently) is
reported once, loudly: its other processors would see run spans in clear.

Example::

    from otel_decisions.instrumentation._protect import protect_provider

    protect_provider(my_provider)   # True: run spans are scrubbed before my exporters see them
"""

from __future__ import annotations

import logging
import threading
import weakref
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider

from otel_decisions import _runtime, semconv
from otel_decisions._sdk_layout import overwrite_finished_span, prepend_span_processor, span_containers
from otel_decisions.errors import FieldError
from otel_decisions.privacy import run_values, scrub_span

logger = logging.getLogger("otel_decisions")

RUN_SPAN_SCOPES = ("prefect", semconv.INSTRUMENTATION_SCOPE)
"""Instrumentation scopes of run spans: Prefect's run telemetry and the instrumentor's own."""
_RUN_SPAN_SCOPE_SET = frozenset(RUN_SPAN_SCOPES)

SCRUBBED_MARK = "otel_decisions_scrubbed"
"""Set on a finished span the scrubber handled, so later processors do not scrub it again."""


def is_built_record(span: ReadableSpan) -> bool:
    """A decision, review or checkpoint span made by otel-decisions' recording path (built by the
    privacy pipeline). Not a run span whose name happens to start like one: a Prefect task named
    "decision engine" makes run spans called ``decision engine-1a2``, and those are scrubbed."""
    scope = span.instrumentation_scope
    if scope is None or scope.name != semconv.INSTRUMENTATION_SCOPE or not semconv.is_decision_record(span.name):
        return False
    return semconv.PREFECT_RUN_TYPE not in span_containers(span)[0]


class RunSpanScrubber(SpanProcessor):
    """The first processor of a provider: scrubs each finished run span in place. Never raises."""

    def on_start(self, span: Any, parent_context: Any = None) -> None:
        return None

    def on_end(self, span: ReadableSpan) -> None:
        try:
            scope = span.instrumentation_scope
            if scope is None or scope.name not in _RUN_SPAN_SCOPE_SET or is_built_record(span):
                return  # another instrumentation's span, or a record the privacy pipeline built
            self._scrub(span)
        except Exception:  # noqa: BLE001 - never into span.end(): the task's outcome is not ours to change
            _withhold(span)

    @staticmethod
    def _scrub(span: ReadableSpan) -> None:
        attributes = span.attributes or {}
        run_id = attributes.get(semconv.PREFECT_RUN_ID)
        run_id = run_id if type(run_id) is str else None
        try:
            runtime = _runtime.get_runtime()
            values = run_values.get(run_id)
            if run_values.incomplete(run_id):  # some of its masked values were not kept: fail closed
                _runtime.warn_once(
                    "run-values-incomplete",
                    "otel-decisions: a run had more masked values than are kept for its spans; the "
                    "content of those spans is withheld (only the run's ids are exported).",
                )
                _withhold(span)
            else:
                clean = scrub_span(runtime.privacy, span, values)
                if clean is not span and not overwrite_finished_span(span, clean):
                    return  # another ReadableSpan implementation: the exporters' own filter scrubs it
                setattr(span, SCRUBBED_MARK, True)  # noqa: B010 - a plain instance attribute on the SDK's copy
        except Exception as exc:  # noqa: BLE001 - fail closed: what could not be scrubbed is not shown
            if isinstance(exc, FieldError):
                _runtime.warn_bad_settings(exc)
            else:
                _runtime.warn_once(
                    "scrub-failed",
                    f"otel-decisions: a run span could not be scrubbed; its content is withheld: {exc!r}",
                )
            _withhold(span)
        if run_id is not None and semconv.PREFECT_RUN_TYPE in attributes:
            run_values.discard(run_id)  # the run's span has ended: nothing else of it is scrubbed here

    def shutdown(self) -> None:
        return None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _withhold(span: ReadableSpan) -> None:
    """Keep only the run's ids and type (no names, messages or events) in *span*."""
    try:
        from opentelemetry.trace import Status

        keep = {
            k: v
            for k, v in (span.attributes or {}).items()
            if k in (semconv.PREFECT_RUN_ID, semconv.PREFECT_RUN_TYPE, semconv.PREFECT_FLOW_RUN_ID)
        }
        bare = ReadableSpan(
            name=semconv.REDACTION_SENTINEL,
            context=span.context,
            attributes=keep,
            status=Status(span.status.status_code),
        )
        if overwrite_finished_span(span, bare):
            setattr(span, SCRUBBED_MARK, True)  # noqa: B010
    except Exception:  # noqa: BLE001
        pass


_SCRUBBER = RunSpanScrubber()
_protected: weakref.WeakSet[Any] = weakref.WeakSet()
_unprotectable: weakref.WeakSet[Any] = weakref.WeakSet()
_lock = threading.Lock()


def protect_provider(provider: Any) -> bool:
    """Put the run-span scrubber first in *provider* (an SDK ``TracerProvider``). Idempotent and cheap
    to call again. Returns whether its run spans are scrubbed before every processor; when they cannot
    be, says so once. A provider that is not an SDK one exports nothing otel-decisions knows of: ``True``."""
    if not isinstance(provider, TracerProvider):
        return True
    if provider in _protected:
        return True
    with _lock:
        if provider in _protected:
            return True
        if prepend_span_processor(provider, _SCRUBBER):
            _protected.add(provider)
            return True
        if provider not in _unprotectable:
            _unprotectable.add(provider)
            logger.warning(
                "otel-decisions: the tracer provider %r runs its span processors concurrently, so otel-decisions "
                "cannot scrub Prefect's run spans before them: run names, state and exception messages may reach "
                "its exporters in clear. Use a provider with the SDK's default (synchronous) processor chain, or "
                "call otel_decisions.configure() and export through otel-decisions only.",
                provider,
            )
        return False


def is_scrubbed(span: ReadableSpan) -> bool:
    """Whether the scrubber already handled this finished span."""
    return bool(getattr(span, SCRUBBED_MARK, False))
