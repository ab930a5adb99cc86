"""A fresh chDB database and a fresh hash chain, with decisions recorded through the real capture API."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import otel_decisions
from otel_decisions.store.client import get_client
from otel_decisions.store.exporter import ClickHouseSpanExporter
from otel_decisions.store.schema import apply_migrations

from .conftest import TEST_HMAC_KEY
from .seed import fresh_chdb_dsn


class RecordStore:
    """A fresh chDB database and a fresh hash chain (as in a new process), capturing in memory until stored."""

    def __init__(self, tmp_path, name: str) -> None:
        import importlib

        self.dsn = fresh_chdb_dsn(name)
        self.client = get_client(self.dsn, role="admin")
        apply_migrations(self.client)
        importlib.import_module("otel_decisions.capture").chain.reset()  # this database holds the whole chain
        self.memory = InMemorySpanExporter()
        self.exported: list = []
        """Every span store() wrote, in order."""
        otel_decisions.configure(exporters=["none"], span_exporters=[self.memory], durable=False,
                                 data_dir=str(tmp_path), hmac_key=TEST_HMAC_KEY)

    def store(self, *, redeliver_first: bool = False) -> None:
        """Flush (which records a checkpoint) and write every captured span through the exporter."""
        otel_decisions.force_flush()
        exporter = ClickHouseSpanExporter(self.dsn)
        spans = self.memory.get_finished_spans()
        exporter.export(spans)
        self.exported += spans
        if redeliver_first:
            exporter.export(spans[:1])
        exporter.shutdown()
        self.memory.clear()  # the next store() writes only what was recorded since
