"""The only wiring: ``configure()`` (tracer provider, resource, sampler, processor order, exporter
registry), ``force_flush()`` / ``shutdown()``, and the ``opentelemetry_configurator`` entry point.

Example::

    import otel_decisions

    otel_decisions.configure(service_name="credit-scoring", exporters=["otlp"])
    otel_decisions.PrefectInstrumentor().instrument()
"""

from otel_decisions.sdk._configure import (
    DecisionAwareSampler,
    OtelDecisionsConfigurator,
    build_exporters,
    configure,
    force_flush,
    shutdown,
)

__all__ = [
    "DecisionAwareSampler",
    "OtelDecisionsConfigurator",
    "build_exporters",
    "configure",
    "force_flush",
    "shutdown",
]
