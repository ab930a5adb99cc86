"""``ClickHouseSpanExporter``: finished spans → ``otel_traces`` rows in chDB or a ClickHouse server.

Rows are exactly those the collector's clickhouse exporter writes (see
:mod:`otel_decisions.store.mapping`), so the ``decisions`` view and every query work the
same whether spans arrive directly or through a collector. Each batch of up to ``insert_rows``
spans is built as one Arrow table (:func:`~otel_decisions.store.mapping.spans_to_arrow`)
and written with one ``insert_arrow`` (Arrow IPC: chDB and a server both read it natively).

Honours the SDK exporter contract: ``export`` returns a result and never raises, runs with
instrumentation suppressed, and ``shutdown`` is idempotent. The client is opened lazily on the
first export (never at construction: processes may fork after ``configure()``); on the embedded
database it logs in as the writer role, and the schema is applied on first open unless
``ensure_schema=False``.

Example::

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from otel_decisions.store.exporter import ClickHouseSpanExporter

    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(ClickHouseSpanExporter("chdb:///tmp/decisions")))
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Generator, Sequence
from typing import Any

import pyarrow as pa
from clickhouse_connect.driver.httpclient import HttpClient
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from otel_decisions.errors import StoreAuthError
from otel_decisions.settings import DecisionSettings, load_settings
from otel_decisions.store.client import get_client
from otel_decisions.store.mapping import spans_to_arrow
from otel_decisions.store.schema import TRACES_TABLE, apply_migrations

__all__ = ["ClickHouseSpanExporter"]

logger = logging.getLogger(__name__)

INSERT_SETTINGS: dict[str, Any] = {
    # The views behind otel_traces write ReplacingMergeTree tables (decisions, decision_reviews).
    # By default every INSERT first collapses its own block as a merge would; copies of a
    # decision are collapsed at merge time and by FINAL / LIMIT 1 BY in every query anyway, so
    # the extra pass buys nothing here and costs about a sixth of a 10,000-span insert into chDB
    # (benchmarks/storage.py measures the exporter with and without views).
    "optimize_on_insert": 0,
}
"""Settings of the exporter's INSERTs (also used by ``benchmarks/storage.py``'s insert-only baseline)."""


STREAM_CHUNK = 2_500
"""Spans per Arrow record batch of a streamed insert."""


def _arrow_stream(batch: Sequence[ReadableSpan]) -> Generator[bytes, None, None]:
    """The Arrow IPC stream of *batch*, yielded chunk by chunk as each is mapped."""
    sink = io.BytesIO()
    writer = None
    schema = None
    for start in range(0, len(batch), STREAM_CHUNK):
        table = spans_to_arrow(batch[start : start + STREAM_CHUNK])
        if writer is None:
            schema = table.schema
            writer = pa.ipc.new_stream(sink, schema)
        else:
            table = table.cast(schema)  # a chunk whose column types were inferred differently
        writer.write_table(table)
        yield sink.getvalue()
        sink.seek(0)
        sink.truncate()
    if writer is not None:
        writer.close()
        yield sink.getvalue()


class ClickHouseSpanExporter(SpanExporter):
    """Writes spans to ``otel_traces`` in the collector's exact row format.

    Args:
        dsn: ClickHouse DSN; default ``settings.resolved_dsn``.
        settings: the one settings object (batch size, data directory); default from the environment.
        client: an open clickhouse-connect client to use instead of opening one (not closed on shutdown).
        ensure_schema: apply the schema migrations when the client is first opened.
    """

    def __init__(
        self,
        dsn: str | None = None,
        *,
        settings: DecisionSettings | None = None,
        client: Any | None = None,
        ensure_schema: bool = True,
        insert_rows: int = 10_000,
    ) -> None:
        if insert_rows < 1:
            raise ValueError(f"insert_rows: must be at least 1, got {insert_rows}")
        self._settings = settings
        self._dsn = dsn
        self._client = client
        self._owns_client = client is None
        self._ensure_schema = ensure_schema
        self._schema_ready = False
        self._lock = threading.Lock()
        self._shutdown = False
        # Rows per INSERT: ClickHouse wants few, large inserts (each makes a part). Independent of
        # export_batch_size, which sizes what the shipper hands over per call.
        self._batch_size = insert_rows
        self.preferred_batch_size = insert_rows
        """The durable spool's shipper hands over up to this many spans per export (one INSERT each)."""
        self.exported = 0
        """Spans written so far (for health checks and tests)."""

    @property
    def dsn(self) -> str:
        if self._dsn is None:
            self._dsn = (self._settings or load_settings()).resolved_dsn
        return self._dsn

    def _connect(self) -> Any:
        if self._client is None:
            # the embedded database: the writer role (INSERT only); get_client applies the schema
            # as admin first. A server: the DSN's user, which applies the schema itself below.
            self._client = get_client(self.dsn, self._settings, role="writer")
            if self.dsn.lower().startswith("chdb:"):
                self._schema_ready = True
        if self._ensure_schema and not self._schema_ready:
            try:
                apply_migrations(self._client)
            except StoreAuthError:
                # a server user with the writer role only: the schema is the admin's (`schema apply`)
                logger.info("otel-decisions: this user may not apply the schema; inserting into the existing one")
        self._schema_ready = True
        return self._client

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        """Insert *spans* in batches; ``FAILURE`` (logged) on any error, never raises."""
        if self._shutdown:
            logger.warning("otel-decisions: ClickHouseSpanExporter.export called after shutdown")
            return SpanExportResult.FAILURE
        if not spans:
            return SpanExportResult.SUCCESS
        with suppress_instrumentation():  # the export must not trace itself (the SDK contract)
            try:
                with self._lock:
                    client = self._connect()
                    for start in range(0, len(spans), self._batch_size):
                        batch = spans[start : start + self._batch_size]
                        self._insert(client, batch)
                        self.exported += len(batch)
                return SpanExportResult.SUCCESS
            except Exception as exc:  # noqa: BLE001 - the exporter contract: report, never raise
                logger.warning("otel-decisions: ClickHouse export of %d span(s) failed: %s", len(spans), exc)
                self._reconnect_next_time()
                return SpanExportResult.FAILURE

    def _reconnect_next_time(self) -> None:
        """After a failure on the embedded database, open a new client on the next export: its owner
        may have exited (idle) and a new one serves on other ports (``get_client`` finds or starts it)."""
        if self._owns_client and self._client is not None and self.dsn.lower().startswith("chdb:"):
            try:
                self._client.close()
            except Exception:  # noqa: BLE001 - the old client is dropped either way
                logger.debug("otel-decisions: closing a failed ClickHouse client raised", exc_info=True)
            self._client = None

    def _insert(self, client: Any, batch: Sequence[ReadableSpan]) -> None:
        """One INSERT of *batch* as Arrow: built column by column and serialised in C++ (the Python
        Native serialiser costs more than the mapping itself); the stored rows are the same.

        Over HTTP a large batch goes as an ``ArrowStream`` body produced chunk by chunk while it is
        sent, so the server parses one chunk while this process maps the next (one INSERT, one
        part). Anything else (clickhouse-connect's in-process chDB client) gets one Arrow table.
        """
        if len(batch) <= STREAM_CHUNK or not isinstance(client, HttpClient):
            client.insert_arrow(TRACES_TABLE, spans_to_arrow(batch), settings=INSERT_SETTINGS)
            return
        client.raw_insert(TRACES_TABLE, None, _arrow_stream(batch), INSERT_SETTINGS, "ArrowStream")

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Nothing is buffered here: every export is written before it returns."""
        return True

    def shutdown(self) -> None:
        """Close the client this exporter opened. Idempotent."""
        with self._lock:
            if self._shutdown:
                return
            self._shutdown = True
            client, self._client = self._client, None
        if client is not None and self._owns_client:
            try:
                client.close()
            except Exception as exc:  # noqa: BLE001 - closing must not raise either
                logger.debug("otel-decisions: closing the ClickHouse client failed: %s", exc)
