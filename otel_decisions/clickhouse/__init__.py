"""ClickHouse storage: client factory, schema migrations, span→row mapping and the span exporter.

Imports are lazy so ``import otel_decisions`` never pulls in clickhouse-connect or chDB.

Example::

    from otel_decisions.clickhouse import ClickHouseSpanExporter, get_client, apply_migrations
    client = get_client("chdb:///tmp/decisions")
    apply_migrations(client)
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClickHouseSpanExporter", "get_client", "apply_migrations", "span_to_row"]


def __getattr__(name: str) -> Any:
    if name == "ClickHouseSpanExporter":
        from otel_decisions.clickhouse.exporter import ClickHouseSpanExporter

        return ClickHouseSpanExporter
    if name == "get_client":
        from otel_decisions.clickhouse.client import get_client

        return get_client
    if name == "apply_migrations":
        from otel_decisions.clickhouse.schema import apply_migrations

        return apply_migrations
    if name == "span_to_row":
        from otel_decisions.clickhouse.mapping import span_to_row

        return span_to_row
    raise AttributeError(name)
