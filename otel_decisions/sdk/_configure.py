"""``configure()``: tracer provider, resource, sampler, processors and exporters from settings.

It adds to a tracer provider the application already set (an SDK ``TracerProvider``)
instead of replacing it, and makes decision and review spans always sampled.

Example::

    import otel_decisions
    otel_decisions.configure(service_name="credit-scoring", exporters=["otlp"])
    otel_decisions.PrefectInstrumentor().instrument()
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter
from opentelemetry.sdk.trace.sampling import Decision as SamplingDecision
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult

from otel_decisions import _runtime, semconv
from otel_decisions._sdk_layout import span_processors, unlimited_tracer
from otel_decisions.capture import chain, record_checkpoint
from otel_decisions.delivery import DurableSpanProcessor, build_durable_processor, is_durable_span
from otel_decisions.errors import SettingsError
from otel_decisions.instrumentation._protect import RunSpanScrubber, is_built_record, is_scrubbed, protect_provider
from otel_decisions.instrumentation._workers import note_setup_call
from otel_decisions.privacy import PrivacyPolicy, run_values, scrub_span
from otel_decisions.settings import DecisionSettings, load_settings
from otel_decisions.store.exporter import ClickHouseSpanExporter

logger = logging.getLogger("otel_decisions")


class DecisionAwareSampler(Sampler):
    """Records decision and review spans whatever *delegate* decides; delegates everything else."""

    def __init__(self, delegate: Sampler) -> None:
        self.delegate = delegate

    def should_sample(
        self,
        parent_context: Any,
        trace_id: int,
        name: str,
        kind: Any = None,
        attributes: Any = None,
        links: Any = None,
        trace_state: Any = None,
    ) -> SamplingResult:
        if semconv.is_decision_record(name):
            parent = trace.get_current_span(parent_context).get_span_context()
            return SamplingResult(
                SamplingDecision.RECORD_AND_SAMPLE, attributes, parent.trace_state if parent.is_valid else None
            )
        return self.delegate.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

    def get_description(self) -> str:
        return f"DecisionAwareSampler{{{self.delegate.get_description()}}}"


class _NonDurableFilter(SpanProcessor):
    """Forwards to *inner* only the spans the durable processor does not own."""

    def __init__(self, inner: SpanProcessor, settings: DecisionSettings) -> None:
        self._inner = inner
        self._settings = settings
        self._is_durable = is_durable_span

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self._inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        if not self._is_durable(span, self._settings):
            self._inner.on_end(span)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _PrivacyFilter(SpanProcessor):
    """Gives *inner* a scrubbed copy of every span that is not a decision record, except spans of the
    excluded instrumentation scopes (Prefect's own server), which it drops.

    Prefect's run spans carry exception messages, stack traces, state messages and run names
    templated from parameters; none of that passed the privacy pipeline. Decision, review and
    checkpoint spans pass unchanged (they were built by it). Never raises into the caller for
    non-decision spans: a problem is logged once and the span is dropped, not the task.
    """

    def __init__(self, inner: SpanProcessor, settings: DecisionSettings, policy: PrivacyPolicy) -> None:
        self.inner = inner
        self._inner = inner
        self._settings = settings
        self._policy = policy
        self._warned = False
        self._excluded = tuple(settings.excluded_scopes)

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        self._inner.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        name = span.name
        if is_built_record(span):
            self._inner.on_end(
                span
            )  # decision records: a refusal (e.g. the spool quota) reaches the recording call via _runtime
            return
        scope = span.instrumentation_scope
        if scope is not None and self._excluded and scope.name.startswith(self._excluded):
            return  # e.g. the spans of Prefect's temporary server in this process (settings.excluded_scopes)
        try:
            if is_scrubbed(span):  # the provider's first processor scrubbed it for every exporter
                self._inner.on_end(span)
                return
            run_id = (span.attributes or {}).get(semconv.PREFECT_RUN_ID)
            self._inner.on_end(scrub_span(self._policy, span, run_values.get(run_id) if type(run_id) is str else ()))
        except Exception as exc:  # noqa: BLE001 - a run span must never fail the task or flow it describes
            if not self._warned:
                self._warned = True
                logger.warning("otel-decisions: a %r span could not be exported and was dropped: %s", name, exc)

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)


class _SwitchableProcessor(SpanProcessor):
    """Added once to a provider; ``configure()`` swaps its delegates so re-configuring never stacks processors."""

    def __init__(self) -> None:
        self._delegates: tuple[SpanProcessor, ...] = ()

    def replace(self, delegates: Sequence[SpanProcessor]) -> tuple[SpanProcessor, ...]:
        old, self._delegates = self._delegates, tuple(delegates)
        return old

    @property
    def delegates(self) -> tuple[SpanProcessor, ...]:
        return self._delegates

    def on_start(self, span: Span, parent_context: Any = None) -> None:
        for processor in self._delegates:
            processor.on_start(span, parent_context=parent_context)

    def on_end(self, span: ReadableSpan) -> None:
        for processor in self._delegates:
            processor.on_end(span)

    def shutdown(self) -> None:
        for processor in self._delegates:
            processor.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return all(processor.force_flush(timeout_millis) for processor in self._delegates)


_switches: dict[int, _SwitchableProcessor] = {}
_atexit_registered = False


def build_exporters(settings: DecisionSettings) -> list[SpanExporter]:
    """The span exporters named in ``settings.exporters``."""
    exporters: list[SpanExporter] = []
    for name in dict.fromkeys(settings.exporters):
        if name == "otlp":
            exporters.append(_otlp_exporter())
        elif name == "console":
            exporters.append(ConsoleSpanExporter())
        elif name == "clickhouse":
            exporters.append(ClickHouseSpanExporter(settings=settings))
    return exporters


def _otlp_exporter() -> SpanExporter:
    protocol = (
        os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    ).strip()
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        return GrpcExporter()
    if protocol in ("http/protobuf", "http"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        return HttpExporter()
    raise ValueError(f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported; use 'grpc' or 'http/protobuf'")


def configure(
    *,
    service_name: str | None = None,
    service_version: str | None = None,
    environment: str | None = None,
    exporters: Sequence[Literal["otlp", "console", "clickhouse", "none"]] | None = None,
    dsn: str | None = None,
    data_dir: str | Path | None = None,
    auto_capture: bool | None = None,
    capture_inputs: bool | None = None,
    capture_output: bool | None = None,
    outcome_fields: Sequence[str] | None = None,
    confidence_fields: Sequence[str] | None = None,
    default_decision_type: str | None = None,
    auto_capture_batches: bool | None = None,
    batch_subject_id_column: str | None = None,
    batch_inputs_include: Sequence[str] | None = None,
    batch_inputs_exclude: Sequence[str] | None = None,
    flow_artifacts: bool | None = None,
    trace_url: str | None = None,
    privacy_mode: Literal["denylist", "allowlist"] | None = None,
    privacy_deny_patterns: Sequence[str] | None = None,
    privacy_extra_deny_patterns: Sequence[str] | None = None,
    privacy_allow_patterns: Sequence[str] | None = None,
    scrub_free_text: bool | None = None,
    hmac_key: str | None = None,
    retention_policy: Mapping[str, Any] | None = None,
    max_value_length: int | None = None,
    max_json_length: int | None = None,
    always_sample_decisions: bool | None = None,
    durable: bool | None = None,
    spool_dir: str | Path | None = None,
    commit_interval_ms: float | None = None,
    commit_max_records: int | None = None,
    strict_fsync: bool | None = None,
    spool_quota_bytes: int | None = None,
    quota_policy: Literal["block", "fail"] | None = None,
    quota_block_timeout_s: float | None = None,
    durable_span_names: Sequence[str] | None = None,
    excluded_scopes: Sequence[str] | None = None,
    export_batch_size: int | None = None,
    retry_initial_backoff_s: float | None = None,
    retry_max_backoff_s: float | None = None,
    embedded_admin_password: str | None = None,
    embedded_writer_password: str | None = None,
    embedded_reader_password: str | None = None,
    tracer_provider: TracerProvider | None = None,
    span_exporters: Sequence[SpanExporter] = (),
) -> DecisionSettings:
    """Configure otel-decisions. Every keyword overrides its ``OTEL_DECISIONS_*`` variable; ``None`` means "not given".

    ``tracer_provider``: an SDK provider to add to (default: the global one if it is an SDK
    provider, else a new one that becomes global). ``span_exporters``: extra exporters (e.g. an
    in-memory exporter in tests) that receive the same spans. Calling it again replaces what the
    previous call added. Returns the resolved settings.
    """
    global _atexit_registered
    overrides = {k: v for k, v in locals().items() if k not in ("tracer_provider", "span_exporters")}
    settings = load_settings(
        **{
            k: (list(v) if isinstance(v, (list, tuple)) else dict(v) if isinstance(v, Mapping) else v)
            for k, v in overrides.items()
        }
    )
    note_setup_call("configure")  # does this call run again in a pool worker or a served flow run?

    provider = tracer_provider
    if provider is None:
        current = trace.get_tracer_provider()
        if isinstance(current, TracerProvider):
            provider = current
        else:
            resource = Resource.create(_resource_attributes(settings))
            provider = TracerProvider(resource=resource)  # the sampler from OTEL_TRACES_SAMPLER, as the SDK reads it
            trace.set_tracer_provider(provider)
            if trace.get_tracer_provider() is not provider:  # someone else won the race
                provider = trace.get_tracer_provider()  # type: ignore[assignment]
    if not isinstance(provider, TracerProvider):
        raise SettingsError("tracer_provider", "otel-decisions needs an opentelemetry-sdk TracerProvider")
    if settings.always_sample_decisions and not isinstance(provider.sampler, DecisionAwareSampler):
        provider.sampler = DecisionAwareSampler(provider.sampler)
    protect_provider(provider)  # run spans scrubbed before any processor, the application's own too

    chosen = [*build_exporters(settings), *span_exporters]
    policy = PrivacyPolicy.from_settings(settings)
    filters = [_PrivacyFilter(processor, settings, policy) for processor in _build_processors(chosen, settings)]
    processors: list[SpanProcessor] = list(filters)

    switch = _switches.get(id(provider))
    if switch is None:
        switch = _switches[id(provider)] = _SwitchableProcessor()
        provider.add_span_processor(switch)
    for old in switch.replace(processors):
        try:
            old.shutdown()
        except Exception:  # noqa: BLE001
            logger.exception("otel-decisions: shutting down a replaced span processor failed")

    spools = [f.inner for f in filters if isinstance(f.inner, DurableSpanProcessor)]
    sink = _SpoolSink(provider, switch, spools[0]) if len(spools) == 1 else None

    previous = _runtime.current_runtime()
    if previous is not None and previous.privacy.key_id != policy.key_id:
        # A chain is signed with one key: close the old chain with a checkpoint under the old key,
        # and start a new chain for records pseudonymised and signed with the new one.
        record_checkpoint()
        chain.reset()
    _runtime.set_runtime(
        _runtime.make_runtime(
            settings,
            provider,
            configured=True,
            policy=policy,
            decisions_always_sampled=isinstance(provider.sampler, DecisionAwareSampler),
            record_sink=sink,
        )
    )
    if not _atexit_registered:
        atexit.register(shutdown)
        _atexit_registered = True
    return settings


class _SpoolSink:
    """:class:`otel_decisions._runtime.RecordSink` over the durable processor ``configure()`` added: a batch
    of decision records goes straight to the spool while the provider's pipeline is still the one
    ``configure()`` built (the run-span scrubber, which passes records, then the switch whose only
    processor for records is this spool), its sampler keeps every record, and the tracer's limits cut
    nothing. Then the records are what SDK spans would have spooled; otherwise the caller makes spans."""

    def __init__(self, provider: TracerProvider, switch: _SwitchableProcessor, durable: DurableSpanProcessor) -> None:
        self._provider = provider
        self._switch = switch
        self._delegates = switch.delegates
        self._durable = durable

    def target(self, tracer: Any, attributes: int) -> tuple[Any, Any] | None:
        processors = span_processors(self._provider)
        if (
            processors is None
            or self._switch.delegates is not self._delegates
            or self._durable.shut
            or not isinstance(self._provider.sampler, DecisionAwareSampler)
            or any(p is not self._switch and type(p) is not RunSpanScrubber for p in processors)
        ):
            return None
        return unlimited_tracer(tracer, attributes)

    def write(self, records: Sequence[tuple[Any, ...]], resource: Any, scope: Any) -> tuple[int, Exception | None]:
        return self._durable.append_records(records, resource, scope)


class _Borrowed(SpanExporter):
    """An exporter shared with the durable processor, which owns (and shuts down) it."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> Any:
        return self._inner.export(spans)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self) -> None:
        """Not ours to close: the durable processor shuts the exporter down after its last delivery."""


def _build_processors(exporters: list[SpanExporter], settings: DecisionSettings) -> list[SpanProcessor]:
    """Span processors for *exporters*. Shutdown runs in list order, so the batch processors
    (which only borrow the exporters) flush before the durable one closes them."""
    if not exporters:
        return []
    if not settings.durable:
        return [BatchSpanProcessor(exporter) for exporter in exporters]
    batch: list[SpanProcessor] = [
        _NonDurableFilter(BatchSpanProcessor(_Borrowed(exporter)), settings) for exporter in exporters
    ]
    return [*batch, build_durable_processor(exporters, settings)]


def _resource_attributes(settings: DecisionSettings) -> dict[str, str]:
    attrs = {semconv.SERVICE_NAME: settings.resolved_service_name}
    if settings.service_version:
        attrs[semconv.SERVICE_VERSION] = settings.service_version
    if settings.environment:
        attrs[semconv.DEPLOYMENT_ENVIRONMENT] = settings.environment
    return attrs


class OtelDecisionsConfigurator:
    """``opentelemetry-instrument`` support (entry point group ``opentelemetry_configurator``).

    ``opentelemetry-instrument python flow.py`` then runs :func:`configure` from the
    ``OTEL_DECISIONS_*`` environment and the instrumentor entry point covers Prefect: no code changes.
    """

    def configure(self, **kwargs: Any) -> None:
        configure()


def force_flush(timeout_millis: int = 30_000) -> bool:
    """Checkpoint the integrity chain, then flush what otel-decisions added (spool commit, pending exports)."""
    record_checkpoint()
    ok = True
    for switch in list(_switches.values()):
        ok = switch.force_flush(timeout_millis) and ok
    return ok


def shutdown() -> None:
    """Flush and stop what ``configure()`` added. Idempotent; registered with ``atexit``."""
    record_checkpoint()
    for switch in list(_switches.values()):
        for old in switch.replace(()):
            try:
                old.shutdown()
            except Exception:  # noqa: BLE001
                logger.exception("otel-decisions: span processor shutdown failed")
    current = _runtime.current_runtime()
    if current is not None and current.configured:
        _runtime.set_runtime(None)
