"""Process state set by ``sdk.configure()`` and read by the layers below it.

Holds the current :class:`Runtime` (settings, compiled privacy policy, tracer) and the refusal
channel between the durable span processor and the recording call. Without ``configure()``,
:func:`get_runtime` builds one from the environment on the global tracer provider.

The refusal channel is the contract for a record the store cannot keep (spool quota reached,
disk error): a span processor never raises out of ``on_end`` (the SDK calls every processor in
turn, and a raise would skip the ones after it and escape into whatever ended the span, e.g.
Prefect's engine). Instead the durable processor hands the error to :func:`report_refusal`;
the recording call (``record_decision``, ``record_review``, a checkpoint) ends its span in the
same thread, then calls :func:`take_refusal` and raises it to its caller. A task that records
explicitly sees the error; auto-capture logs it; a Prefect run span is never refused loudly.

Example::

    from otel_decisions import _runtime

    span.end()
    refusal = _runtime.take_refusal()
    if refusal is not None:
        raise refusal
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider

from otel_decisions import semconv
from otel_decisions._version import __version__
from otel_decisions.privacy import PrivacyPolicy
from otel_decisions.retention import RetentionPolicy
from otel_decisions.settings import DecisionSettings, load_settings

logger = logging.getLogger("otel_decisions")


class RecordSink(Protocol):
    """Where ``configure()``'s pipeline lets a batch of decision records be written without an SDK span each."""

    def target(self, tracer: Any, attributes: int) -> tuple[Any, Any] | None:
        """(resource, instrumentation scope) when records of *tracer* with *attributes* attributes can be
        written now exactly as its spans would reach the store (no other processor, sampler or limit in
        between); None: make SDK spans."""

    def write(self, records: Sequence[tuple[Any, ...]], resource: Any, scope: Any) -> tuple[int, Exception | None]:
        """Write ``(name, (trace id, span id, flags, trace state), parent context tuple, time, attributes)``
        records in order; how many were kept (a prefix) and the refusal that stopped the rest."""


@dataclass
class Runtime:
    """What the capture API uses: settings, compiled privacy policy and a tracer."""

    settings: DecisionSettings
    privacy: PrivacyPolicy
    retention: RetentionPolicy
    tracer_provider: trace.TracerProvider
    tracer: trace.Tracer
    configured: bool
    decisions_always_sampled: bool = False
    """``configure()`` put a sampler in front that records every decision record (the default)."""
    record_sink: RecordSink | None = None
    """``configure()``'s durable spool, for batches of records (:mod:`otel_decisions.capture._batch`)."""
    _warned: set[str] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def first_time(self, key: str) -> bool:
        """Whether *key* is seen for the first time (marks it seen)."""
        with self._lock:
            if key in self._warned:
                return False
            self._warned.add(key)
            return True

    def warn_once(self, key: str, message: str) -> bool:
        """Log *message* once per key (problems in instrumentation are reported, never raised).
        Returns whether it was logged now."""
        if not self.first_time(key):
            return False
        logger.warning(message)
        return True


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def make_runtime(
    settings: DecisionSettings,
    provider: trace.TracerProvider,
    *,
    configured: bool,
    policy: PrivacyPolicy | None = None,
    decisions_always_sampled: bool = False,
    record_sink: RecordSink | None = None,
) -> Runtime:
    tracer = provider.get_tracer(semconv.INSTRUMENTATION_SCOPE, __version__)
    return Runtime(
        settings=settings,
        privacy=policy or PrivacyPolicy.from_settings(settings),
        retention=RetentionPolicy.from_settings(settings.retention_policy),
        tracer_provider=provider,
        tracer=tracer,
        configured=configured,
        decisions_always_sampled=decisions_always_sampled,
        record_sink=record_sink,
    )


def get_runtime() -> Runtime:
    """The current runtime; without ``configure()``, settings come from the environment and spans go to the global provider."""
    global _runtime
    runtime = _runtime
    if runtime is not None:
        return runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = make_runtime(load_settings(), trace.get_tracer_provider(), configured=False)
            if not isinstance(trace.get_tracer_provider(), TracerProvider):
                logger.warning(
                    "otel-decisions: no SDK tracer provider is set, so decisions are not recorded. "
                    "Call otel_decisions.configure() at start-up (or run under opentelemetry-instrument)."
                )
        return _runtime


_fallback_warned: set[str] = set()


def first_time(key: str) -> bool:
    """Whether *key* is seen for the first time in this process (marks it seen). Never raises."""
    try:
        return get_runtime().first_time(key)
    except Exception:  # noqa: BLE001 - the runtime failing must not reach the caller either
        if key in _fallback_warned:
            return False
        _fallback_warned.add(key)
        return True


def warn_bad_settings(exc: Exception) -> bool:
    """Bad settings are the same for every record: said once per field, whichever path meets them."""
    field = getattr(exc, "field", type(exc).__name__)
    return warn_once(f"settings:{field}", f"otel-decisions: recording is off until the settings are fixed: {exc}")


def warn_once(key: str, message: str) -> bool:
    """Log *message* once per key, and never raise: instrumentation problems are reported, not raised
    into the user's code, even when the runtime itself cannot be built (bad settings). Returns
    whether it was logged now."""
    if not first_time(key):
        return False
    logger.warning(message)
    return True


def current_runtime() -> Runtime | None:
    """The runtime if one exists (``None`` before the first recording call or ``configure()``)."""
    return _runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install *runtime* (``configure()``), or drop the configured one (``shutdown()``)."""
    global _runtime
    with _runtime_lock:
        _runtime = runtime


_refusals = threading.local()


def report_refusal(error: Exception) -> None:
    """Called by a span processor in ``on_end``: the record being ended was not kept."""
    _refusals.error = error


def take_refusal() -> Exception | None:
    """The refusal reported in this thread since the last call, if any (and forget it)."""
    error: Exception | None = getattr(_refusals, "error", None)
    if error is not None:
        _refusals.error = None
    return error
