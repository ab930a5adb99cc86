"""The database's own record of who read decision data: ``system.query_log`` copied into ``access_log``.

HIPAA 164.312(b) asks for a record of activity in systems that hold PHI. otel-decisions' CLI writes
its own rows into the store's ``access_log`` (``source = 'otel-decisions'``: command, query name,
subjects, rows). Any other client (clickhouse-client, a notebook, a BI tool) reads around the CLI,
so the database's query log is the second feed: :func:`ensure_query_log_feed` creates the
materialized view ``access_log_query_log_mv`` that copies every finished ``SELECT`` touching this
database's decision tables from ``system.query_log`` into ``access_log`` (``source = 'query_log'``).

The view runs when the engine flushes its query log (each second on the embedded database, every
``flush_interval_milliseconds`` on a server; ``SYSTEM FLUSH LOGS`` forces it). It runs with its
creator's rights (``DEFINER = CURRENT_USER SQL SECURITY DEFINER``): that user needs ``SELECT ON
system.query_log`` and ``INSERT`` on ``access_log`` (the admin role has both), readers need
neither and never see the query log. Server-side ``{name:Type}`` parameters are logged substituted
into the query text (measured: clickhouse-connect and raw ``param_`` URL parameters over HTTP,
clickhouse-driver over native TCP), so ``subject_ids`` holds the 64-hex pseudonyms a query named
as literals or as parameters.

On the embedded database ``system`` is a memory database: the owner re-creates
``system.query_log`` at its first flush after each start, and the view, kept in the store's
database, goes on copying from it.

What it does not record: reads that failed or were killed (``ExceptionWhileProcessing``, which may
have streamed some rows before failing), ``INSERT ... SELECT`` and ``CREATE ... AS SELECT`` (their
``query_kind`` is not ``Select``), queries logged after the last flush when a server or an
embedded owner dies without stopping (SIGKILL, power loss), and on the embedded database the reads
that finish while its owner stops, after the owner's last flush, on connections opened before
(measured: three clients reading in a loop through a stop lost their last 0.1-0.3 s of reads; the
engine's own flush as it exits comes after the views are gone).

Example::

    from otel_decisions.store.audit import ensure_query_log_feed

    ensure_query_log_feed(admin_client, "otel")  # False: this server logs no queries
"""

from __future__ import annotations

import logging
from typing import Any

from otel_decisions.store.errors import ACCESS_DENIED, error_code, first_line

__all__ = ["DECISION_TABLES", "FEED_VIEW", "QUERY_LOG_SOURCE", "ensure_query_log_feed", "query_log_feed_sql"]

logger = logging.getLogger(__name__)

FEED_VIEW = "access_log_query_log_mv"
QUERY_LOG_SOURCE = "query_log"
"""``access_log.source`` of the rows the view copies."""
DECISION_TABLES = ("decisions", "otel_traces", "decision_reviews", "decision_events")
"""The tables whose reads are decision-data access."""
FEED_VERSION = "otel-decisions access feed v1"
"""The view's COMMENT: a view with another comment is an older definition, and is replaced."""
PARAMETERS_MAX_CHARS = 4000
SUBJECT_ID_PATTERN = "[0-9a-f]{64}"  # pseudonyms are 64-hex HMACs


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def _string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _on_cluster(cluster: str | None) -> str:
    return f" ON CLUSTER {_ident(cluster)}" if cluster else ""


def query_log_feed_sql(database: str, cluster: str | None = None) -> str:
    """The ``CREATE MATERIALIZED VIEW`` statement of the feed (for review or a DBA)."""
    db = _ident(database)
    tables = ", ".join(_string(f"{database}.{table}") for table in DECISION_TABLES)
    return (
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{_ident(FEED_VIEW)}{_on_cluster(cluster)}\n"
        f"TO {db}.`access_log`\n"
        "DEFINER = CURRENT_USER SQL SECURITY DEFINER\n"
        "AS SELECT\n"
        "    event_time_microseconds AS at,\n"
        f"    {_string(QUERY_LOG_SOURCE)} AS source,\n"
        "    toString(user) AS db_user,\n"
        "    toString(os_user) AS os_user,\n"
        "    'sql' AS command,\n"
        "    '' AS query_name,\n"
        f"    substringUTF8(query, 1, {PARAMETERS_MAX_CHARS}) AS parameters,\n"
        f"    arrayDistinct(extractAll(query, {_string(SUBJECT_ID_PATTERN)})) AS subject_ids,\n"
        "    CAST(tables, 'Array(String)') AS tables,\n"
        "    result_rows AS rows,\n"
        "    toUInt64(0) AS phi_rows,\n"
        "    '' AS export_format,\n"
        "    query_id\n"
        "FROM system.query_log\n"
        f"WHERE type = 'QueryFinish' AND query_kind = 'Select' AND hasAny(tables, [{tables}])\n"
        f"COMMENT {_string(FEED_VERSION)}"
    )


def ensure_query_log_feed(client: Any, database: str, *, cluster: str | None = None) -> bool:
    """Create (once; replace an older definition) the view that copies reads of decision data into ``access_log``.

    Returns ``True`` when the feed exists afterwards; ``False``, logged, when it cannot: no
    ``system.query_log`` that this user sees (a server with the query log disabled), no
    ``access_log`` table yet (migration 5), or no right to create it (``ACCESS_DENIED``: grant
    the migrating user ``SELECT ON system.query_log``). Other errors propagate.
    """
    found = dict(
        client.query(
            "SELECT name, comment FROM system.tables WHERE (database = 'system' AND name = 'query_log') "
            "OR (database = {db:String} AND name IN ('access_log', {view:String}))",
            parameters={"db": database, "view": FEED_VIEW},
        ).result_rows
    )
    if "query_log" not in found:
        logger.info(
            "otel-decisions: no system.query_log on this server (or this user cannot see it): reads of %r by "
            "other clients are not copied into access_log; enable <query_log> in the server's config",
            database,
        )
        return False
    if "access_log" not in found:
        logger.warning("otel-decisions: %r has no access_log table yet; apply the schema migrations first", database)
        return False
    if found.get(FEED_VIEW) == FEED_VERSION:
        return True
    try:
        if FEED_VIEW in found:  # an older definition
            client.command(f"DROP VIEW IF EXISTS {_ident(database)}.{_ident(FEED_VIEW)}{_on_cluster(cluster)}")
        client.command(query_log_feed_sql(database, cluster))
    except Exception as exc:
        if error_code(exc) != ACCESS_DENIED:
            raise
        logger.warning(
            "otel-decisions: cannot create the access feed %s.%s (%s); grant this user SELECT ON system.query_log",
            database,
            FEED_VIEW,
            first_line(exc),
        )
        return False
    logger.info(
        "otel-decisions: reads of decision data in %r are copied from system.query_log into access_log", database
    )
    return True
