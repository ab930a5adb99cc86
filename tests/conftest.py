"""Shared fixtures: one Prefect test harness per session, quiet and offline."""

from __future__ import annotations

import os

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_LOGGING_TO_API_ENABLED", "false")
# a temporary Prefect server starting on a loaded 2-core machine can take more than the default 20 s
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _stop_embedded_owners(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Owners of embedded databases the tests started are stopped when the session ends."""
    yield
    from otel_decisions.store import embedded
    from tests.seed import stop_session_store

    stop_session_store()
    for published in tmp_path_factory.getbasetemp().rglob(embedded.ENDPOINT_FILE):
        embedded.stop_server(published.parent)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Enter ``prefect_test_harness`` once (12-16 s) with heartbeats off so warm flows take ~ms."""
    from prefect.settings import PREFECT_FLOWS_HEARTBEAT_FREQUENCY, temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        with temporary_settings({PREFECT_FLOWS_HEARTBEAT_FREQUENCY: None}):
            yield


TEST_HMAC_KEY = "test-hmac-key-0123456789abcdef"


@pytest.fixture
def captured(tmp_path_factory: pytest.TempPathFactory, prefect_harness: None):
    """Configure otel-decisions with an in-memory exporter (fresh for each test) and instrument Prefect.

    Yields the ``InMemorySpanExporter``; call ``otel_decisions.force_flush()`` before reading it.
    """
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import otel_decisions

    memory = InMemorySpanExporter()
    otel_decisions.configure(
        exporters=["none"],
        span_exporters=[memory],
        durable=False,
        hmac_key=TEST_HMAC_KEY,
        data_dir=str(tmp_path_factory.mktemp("otel-decisions-data")),
        service_name="capture-tests",
    )
    instrumentor = otel_decisions.PrefectInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    yield memory
    otel_decisions.force_flush()
    memory.clear()
