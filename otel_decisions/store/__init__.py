"""ClickHouse storage: client factory, schema migrations, span→row mapping and the span exporter.

Example::

    from otel_decisions.store import ClickHouseSpanExporter, apply_migrations, get_client

    client = get_client("chdb:///tmp/decisions")
    apply_migrations(client)
"""

from otel_decisions.store.client import get_client
from otel_decisions.store.exporter import ClickHouseSpanExporter
from otel_decisions.store.mapping import span_to_row
from otel_decisions.store.schema import apply_migrations

__all__ = ["ClickHouseSpanExporter", "apply_migrations", "get_client", "span_to_row"]
