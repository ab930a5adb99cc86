"""configure(): resource, exporters, always-sampled decisions, and an application's own tracer provider."""

from __future__ import annotations

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

import otel_decisions
from otel_decisions import semconv
from otel_decisions._runtime import get_runtime
from otel_decisions.sdk import DecisionAwareSampler

from .conftest import TEST_HMAC_KEY


def test_decisions_are_sampled_when_the_sampler_drops_everything_else(tmp_path):
    """An application that samples nothing still keeps every decision and review."""
    app_memory = InMemorySpanExporter()
    app_provider = TracerProvider(sampler=ALWAYS_OFF, resource=Resource.create({"service.name": "bank-app"}))
    app_provider.add_span_processor(SimpleSpanProcessor(app_memory))
    ours = InMemorySpanExporter()
    otel_decisions.configure(tracer_provider=app_provider, exporters=["none"], span_exporters=[ours], durable=False,
                             data_dir=str(tmp_path), hmac_key=TEST_HMAC_KEY)
    try:
        assert isinstance(app_provider.sampler, DecisionAwareSampler)
        tracer = app_provider.get_tracer("app")
        with tracer.start_as_current_span("handle-request") as request_span:
            assert not request_span.is_recording()
            d = otel_decisions.record_decision(type="credit.approval", outcome="approve", confidence=0.9)
            otel_decisions.record_review(d, reviewer="analyst-1", action="approve")
        otel_decisions.force_flush()
        names = sorted(s.name for s in ours.get_finished_spans() if s.name != semconv.CHECKPOINT_SPAN_NAME)
        assert names == ["decision credit.approval", "decision.review"]
        # the application's own processor (added before configure) still sees what is recorded
        assert sorted(s.name for s in app_memory.get_finished_spans() if s.name != semconv.CHECKPOINT_SPAN_NAME) == names
        (decision_span,) = [s for s in ours.get_finished_spans() if s.name.startswith("decision ")]
        assert decision_span.resource.attributes["service.name"] == "bank-app"  # the app's resource, not replaced
        assert decision_span.attributes[semconv.DECISION_ID] == d.id
    finally:
        otel_decisions.shutdown()


def test_configure_again_replaces_instead_of_stacking(tmp_path):
    first, second = InMemorySpanExporter(), InMemorySpanExporter()
    provider = TracerProvider()
    for memory in (first, second):
        otel_decisions.configure(tracer_provider=provider, exporters=["none"], span_exporters=[memory], durable=False,
                                 data_dir=str(tmp_path), hmac_key=TEST_HMAC_KEY)
    try:
        otel_decisions.record_decision(type="t", outcome="o")
        otel_decisions.force_flush()
        assert len(first.get_finished_spans()) == 0
        assert [s.name for s in second.get_finished_spans()] == ["decision t", semconv.CHECKPOINT_SPAN_NAME]
        assert get_runtime().tracer_provider is provider
    finally:
        otel_decisions.shutdown()


def test_resource_from_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "team=risk")
    from otel_decisions.sdk._configure import _resource_attributes
    from otel_decisions.settings import load_settings

    settings = load_settings(service_name="scoring", service_version="1.2.3", environment="production")
    attrs = Resource.create(_resource_attributes(settings)).attributes
    assert attrs["service.name"] == "scoring" and attrs["service.version"] == "1.2.3"
    assert attrs["deployment.environment.name"] == "production" and attrs["team"] == "risk"


def test_otlp_protocol_follows_the_standard_variables(monkeypatch):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as Grpc
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as Http

    from otel_decisions.sdk import build_exporters
    from otel_decisions.settings import load_settings

    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_PROTOCOL", raising=False)
    (default,) = build_exporters(load_settings(exporters=["otlp"]))
    assert isinstance(default, Http)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
    (grpc,) = build_exporters(load_settings(exporters=["otlp"]))
    assert isinstance(grpc, Grpc)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json")
    import pytest

    with pytest.raises(ValueError, match="OTEL_EXPORTER_OTLP_PROTOCOL"):
        build_exporters(load_settings(exporters=["otlp"]))
