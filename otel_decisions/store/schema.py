"""DDL and versioned, idempotent migrations for the decision store.

Tables (in the DSN's database):

- ``otel_traces``, ``otel_traces_trace_id_ts`` and ``otel_traces_trace_id_ts_mv``: exactly the DDL the
  OpenTelemetry Collector contrib ``clickhouseexporter`` **v0.161.0** creates
  (``exporter/clickhouseexporter/internal/sqltemplates/traces_table.sql``,
  ``traces_id_ts_lookup_table.sql``, ``traces_id_ts_lookup_mv.sql``, rendered as in
  ``exporter_traces.go``). We own this DDL; the collector runs with ``create_schema: false``.
- ``decisions``: one typed column per :data:`semconv.DECISION_ATTRIBUTES` key, fed from
  ``otel_traces`` by ``decisions_mv`` and deduplicated on ``decision_id`` (ReplacingMergeTree).
- ``decision_reviews``: likewise for ``decision.review`` spans, keyed on ``review_id``.
- ``model_approvals``: which model versions were approved when (maintained by ``otel-decisions models``).
- ``decision_events``: likewise for ``decision.event`` spans (corrections, notices), keyed on ``event_id``.
- the life-cycle registers (migration 5, :mod:`otel_decisions.lifecycle`): ``legal_holds`` (placements and
  releases; ``active_legal_holds`` is the view of holds in force), ``lifecycle_operations`` and
  ``lifecycle_records`` (disposals and erasures with their tombstones), ``retention_policies``,
  ``access_log`` and ``incidents``.
- ``schema_migrations``: which migrations ran, so ``schema apply`` is idempotent.

No TTL deletes decision rows: ``decisions``, ``decision_reviews`` and ``decision_events`` have none, and the optional
``otel_traces`` TTL (:func:`traces_ttl_sql`) is ``DELETE WHERE`` neither decision nor review span.

Example::

    from otel_decisions.store.client import get_client
    from otel_decisions.store.schema import apply_migrations
    applied = apply_migrations(get_client("chdb:///tmp/decisions"))
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from otel_decisions import semconv
from otel_decisions.errors import OtelDecisionsError
from otel_decisions.store import embedded
from otel_decisions.store.audit import ensure_query_log_feed
from otel_decisions.store.errors import store_error

__all__ = [
    "COLLECTOR_VERSION",
    "TRACES_TABLE",
    "DECISION_COLUMNS",
    "REVIEW_COLUMNS",
    "Migration",
    "migrations",
    "render_ddl",
    "apply_migrations",
    "applied_versions",
    "traces_ttl_sql",
    "decision_span_predicate",
]

logger = logging.getLogger(__name__)

COLLECTOR_VERSION = "v0.161.0"
TRACES_TABLE = "otel_traces"
REPLICA_PATH = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"

# --- collector DDL, verbatim from clickhouseexporter v0.161.0 internal/sqltemplates --------------
# Placeholders are Go fmt verbs in the original; we keep the text byte for byte and substitute
# the same values the exporter does (%q = Go-quoted name, %s = cluster / engine / TTL).
_TRACES_TABLE_SQL = """CREATE TABLE IF NOT EXISTS %q.%q %s (
    Timestamp DateTime64(9) CODEC(Delta, ZSTD(1)),
    TraceId String CODEC(ZSTD(1)),
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    TraceState String CODEC(ZSTD(1)),
    SpanName LowCardinality(String) CODEC(ZSTD(1)),
    SpanKind LowCardinality(String) CODEC(ZSTD(1)),
    ServiceName LowCardinality(String) CODEC(ZSTD(1)),
    ResourceAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    ScopeName String CODEC(ZSTD(1)),
    ScopeVersion String CODEC(ZSTD(1)),
    SpanAttributes Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    Duration UInt64 CODEC(ZSTD(1)),
    StatusCode LowCardinality(String) CODEC(ZSTD(1)),
    StatusMessage String CODEC(ZSTD(1)),
    Events Nested (
        Timestamp DateTime64(9),
        Name LowCardinality(String),
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    Links Nested (
        TraceId String,
        SpanId String,
        TraceState String,
        Attributes Map(LowCardinality(String), String)
    ) CODEC(ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_res_attr_key mapKeys(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_res_attr_value mapValues(ResourceAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_key mapKeys(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_span_attr_value mapValues(SpanAttributes) TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX idx_duration Duration TYPE minmax GRANULARITY 1
) ENGINE = %s
PARTITION BY toDate(Timestamp)
ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))
%s
SETTINGS index_granularity=8192, ttl_only_drop_parts = 1
"""

_TRACES_ID_TS_TABLE_SQL = """CREATE TABLE IF NOT EXISTS "%s"."%s_trace_id_ts" %s (
    TraceId String CODEC(ZSTD(1)),
    Start DateTime CODEC(Delta, ZSTD(1)),
    End DateTime CODEC(Delta, ZSTD(1)),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = %s
    PARTITION BY toDate(Start)
    ORDER BY (TraceId, Start)
    %s
    SETTINGS index_granularity=8192, ttl_only_drop_parts = 1"""

_TRACES_ID_TS_MV_SQL = """CREATE MATERIALIZED VIEW IF NOT EXISTS "%s"."%s_trace_id_ts_mv" %s
TO "%s"."%s_trace_id_ts"
AS SELECT
              TraceId,
              min(Timestamp) as Start,
              max(Timestamp) as End
   FROM "%s"."%s"
   WHERE TraceId != ''
   GROUP BY TraceId
"""


def _go_fmt(template: str, *args: str) -> str:
    """Render a Go ``fmt.Sprintf`` template that uses only ``%q`` and ``%s``."""
    out: list[str] = []
    values = iter(args)
    i = 0
    while i < len(template):
        ch = template[i]
        if ch == "%" and i + 1 < len(template) and template[i + 1] in "qs":
            value = next(values)
            out.append(_go_quote(value) if template[i + 1] == "q" else value)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _go_quote(value: str) -> str:
    """Go's ``%q`` for an identifier: double-quoted, backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cluster_string(cluster: str | None) -> str:
    # config.go clusterString(): ON CLUSTER `name`, backticks doubled.
    return f"ON CLUSTER `{cluster.replace('`', '``')}`" if cluster else ""


def _ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


# --- typed decision columns -----------------------------------------------------------------------
@dataclass(frozen=True)
class Column:
    """A typed column extracted from one attribute of the span's ``SpanAttributes`` map."""

    name: str
    key: str
    kind: str  # semconv type: string, string[], double, bool, int

    @property
    def ch_type(self) -> str:
        return {
            "string": "String",
            "string[]": "Array(String)",
            "double": "Nullable(Float64)",
            "bool": "Bool",
            "int": "Nullable(Int64)",
            "date": "Nullable(Date32)",
        }[self.kind]

    @property
    def codec(self) -> str:
        low_cardinality = self.name in _LOW_CARDINALITY
        return f"LowCardinality({self.ch_type})" if low_cardinality else self.ch_type

    def extract(self) -> str:
        """Expression turning the collector's string rendering back into the typed value."""
        value = f"SpanAttributes['{self.key}']"
        if self.kind == "string":
            return value
        if self.kind == "string[]":
            # Slices arrive as JSON array text (pcommon Value.AsString for a slice).
            return f"if({value} = '', CAST([] AS Array(String)), JSONExtract({value}, 'Array(String)'))"
        if self.kind == "double":
            return f"toFloat64OrNull({value})"
        if self.kind == "bool":
            return f"{value} = 'true'"
        if self.kind == "int":
            return f"toInt64OrNull({value})"
        if self.kind == "date":
            return f"toDate32OrNull({value})"
        raise ValueError(self.kind)


def _column_name(key: str, *, review: bool = False) -> str:
    special = {
        semconv.DECISION_ID: "decision_id",
        semconv.DECISION_TYPE: "decision_type",
        semconv.PREFECT_FLOW_RUN_ID: "flow_run_id",
        semconv.PREFECT_TASK_RUN_ID: "task_run_id",
        semconv.PREFECT_FLOW_NAME: "flow_name",
        semconv.PREFECT_TASK_NAME: "task_name",
    }
    if key in special:
        return special[key]
    if review and key.startswith("decision.review."):
        return key.removeprefix("decision.review.").replace(".", "_")
    if key.startswith("decision."):
        return key.removeprefix("decision.").replace(".", "_")
    return key.replace(".", "_")


_LOW_CARDINALITY = {
    "decision_type",
    "outcome",
    "model_name",
    "model_version",
    "model_provider",
    "policy_version",
    "automation",
    "retention_class",
    "source",
    "segment",
    "gen_ai_request_model",
    "gen_ai_provider_name",
    "flow_name",
    "task_name",
    "action",
    "event_type",
    "legal_basis",
    "retention_policy",
}

DECISION_COLUMNS: tuple[Column, ...] = tuple(
    Column(_column_name(key), key, kind) for key, (kind, _doc) in semconv.DECISION_ATTRIBUTES.items()
)
"""One column per ``semconv.DECISION_ATTRIBUTES`` key, in that order."""

LIFECYCLE_DECISION_KEYS = (
    semconv.DECISION_RETENTION_UNTIL,
    semconv.DECISION_RETENTION_BASIS,
    semconv.DECISION_RETENTION_OBLIGATION_UNTIL,
    semconv.DECISION_RETENTION_POLICY,
    semconv.DECISION_LEGAL_BASIS,
    semconv.DECISION_DATA_SOURCES,
    semconv.DECISION_DATASET_VERSIONS,
)
"""Decision columns added by migration 5 (migration 2 keeps its original definition)."""
_DECISION_COLUMNS_V2 = tuple(col for col in DECISION_COLUMNS if col.key not in LIFECYCLE_DECISION_KEYS)

_EVENT_NAMES = {
    semconv.DECISION_ID: "decision_id",
    semconv.DECISION_EVENT_ID: "event_id",
    semconv.DECISION_EVENT_EFFECTIVE_AT: "effective_at_ns",
}
EVENT_COLUMNS: tuple[Column, ...] = tuple(
    Column(_EVENT_NAMES.get(key) or key.removeprefix("decision.event.").replace(".", "_"), key, kind)
    for key, (kind, _doc) in semconv.EVENT_ATTRIBUTES.items()
)
"""One column per ``semconv.EVENT_ATTRIBUTES`` key (``decision_event_type`` -> ``type``...)."""

_REVIEW_NAMES = {
    semconv.DECISION_ID: "decision_id",
    semconv.DECISION_REVIEW_ID: "review_id",
    semconv.DECISION_REVIEW_DECIDED_AT: "decided_at_ns",
}
REVIEW_COLUMNS: tuple[Column, ...] = tuple(
    Column(_REVIEW_NAMES.get(key) or _column_name(key, review=True), key, kind)
    for key, (kind, _doc) in semconv.REVIEW_ATTRIBUTES.items()
)
"""One column per ``semconv.REVIEW_ATTRIBUTES`` key (``decided_at_ns`` for the decision time)."""

# Span identity columns copied next to the typed attributes.
SPAN_COLUMNS = (
    ("timestamp", "DateTime64(9)", "Timestamp"),
    ("trace_id", "String", "TraceId"),
    ("span_id", "String", "SpanId"),
    ("parent_span_id", "String", "ParentSpanId"),
    ("service_name", "LowCardinality(String)", "ServiceName"),
    ("span_name", "LowCardinality(String)", "SpanName"),
    ("status_code", "LowCardinality(String)", "StatusCode"),
    ("duration_ns", "UInt64", "Duration"),
)


def decision_span_predicate() -> str:
    """SQL predicate on ``otel_traces`` selecting decision spans."""
    return f"{semconv.record_sql(semconv.RecordKind.DECISION)} AND SpanAttributes['{semconv.DECISION_ID}'] != ''"


def review_span_predicate() -> str:
    """SQL predicate on ``otel_traces`` selecting review spans."""
    return f"{semconv.record_sql(semconv.RecordKind.REVIEW)} AND SpanAttributes['{semconv.DECISION_REVIEW_ID}'] != ''"


def event_span_predicate() -> str:
    """SQL predicate on ``otel_traces`` selecting event spans (corrections, notices)."""
    return f"{semconv.record_sql(semconv.RecordKind.EVENT)} AND SpanAttributes['{semconv.DECISION_EVENT_ID}'] != ''"


def typed_select(columns: tuple[Column, ...], source: str, predicate: str) -> str:
    parts = [f"    {expr} AS {name}" for name, _type, expr in SPAN_COLUMNS]
    parts += [f"    {col.extract()} AS {col.name}" for col in columns]
    return "SELECT\n" + ",\n".join(parts) + f"\nFROM {source}\nWHERE {predicate}"


def _typed_table(name: str, columns: tuple[Column, ...], key: str, db: str, cluster: str | None) -> str:
    lines = [f"    {col} {typ}" for col, typ, _expr in SPAN_COLUMNS]
    lines += [f"    {col.name} {col.codec}" for col in columns]
    lines.append("    ingested_at DateTime64(3) DEFAULT now64(3)")
    lines.append("    INDEX idx_ts timestamp TYPE minmax GRANULARITY 1")
    if name == "decisions":
        lines.append("    INDEX idx_subject subject_id TYPE bloom_filter(0.01) GRANULARITY 1")
        lines.append("    INDEX idx_flow_run flow_run_id TYPE bloom_filter(0.01) GRANULARITY 1")
        lines.append("    INDEX idx_task_run task_run_id TYPE bloom_filter(0.01) GRANULARITY 1")
    engine = (
        f"ReplicatedReplacingMergeTree({REPLICA_PATH}, ingested_at)" if cluster else "ReplacingMergeTree(ingested_at)"
    )
    # A re-delivered span is byte-identical, start time included, so (day, id) is as good a
    # deduplication key as the id alone, and the leading day lets time-window queries skip data.
    return (
        f"CREATE TABLE IF NOT EXISTS {_ident(db)}.{_ident(name)} {_cluster_string(cluster)} (\n"
        + ",\n".join(lines)
        + f"\n) ENGINE = {engine}\nPARTITION BY toYYYYMM(timestamp)\nORDER BY (toDate(timestamp), {key})\n"
        # Smaller granules: a subject or flow-run lookup through the bloom indexes reads 4x less.
        "SETTINGS index_granularity = 2048"
    )


# --- migrations --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Migration:
    """One schema step: a version, a name and the statements it runs (all idempotent).

    ``checksum`` identifies the step's definition whatever database or cluster it is rendered
    for (it is taken over the statements rendered for ``default`` without a cluster), so a
    store's ``schema_migrations`` rows can be compared with this version's definitions.
    """

    version: int
    name: str
    statements: tuple[str, ...]
    checksum: str = ""


def _checksum(statements: tuple[str, ...]) -> str:
    return hashlib.sha256("\n;\n".join(statements).encode()).hexdigest()[:16]


def _collector_statements(db: str, cluster: str | None) -> tuple[str, ...]:
    # exporter_traces.go renderCreateTracesTableSQL / renderCreateTraceIDTsTableSQL /
    # renderTraceIDTsMaterializedViewSQL, with TTL 0 (none; see traces_ttl_sql).
    engine = f"ReplicatedMergeTree({REPLICA_PATH})" if cluster else "MergeTree()"
    cl = _cluster_string(cluster)
    return (
        _go_fmt(_TRACES_TABLE_SQL, db, TRACES_TABLE, cl, engine, ""),
        _go_fmt(_TRACES_ID_TS_TABLE_SQL, db, TRACES_TABLE, cl, engine, ""),
        _go_fmt(_TRACES_ID_TS_MV_SQL, db, TRACES_TABLE, cl, db, TRACES_TABLE, db, TRACES_TABLE),
    )


def _typed_statements(
    name: str, columns: tuple[Column, ...], key: str, predicate: str, db: str, cluster: str | None
) -> tuple[str, ...]:
    source = f"{_ident(db)}.{_ident(TRACES_TABLE)}"
    select = typed_select(columns, source, predicate)
    target = f"{_ident(db)}.{_ident(name)}"
    column_list = ", ".join([c for c, _t, _e in SPAN_COLUMNS] + [col.name for col in columns])
    return (
        _typed_table(name, columns, key, db, cluster),
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {_ident(db)}.{_ident(name + '_mv')} {_cluster_string(cluster)}\n"
        f"TO {target} ({column_list})\nAS {select}",
        # Backfill rows that were in otel_traces before the view existed; duplicates with rows
        # the view wrote meanwhile collapse on the key.
        f"INSERT INTO {target} ({column_list})\n{select}",
    )


def migrations(database: str = "default", cluster: str | None = None) -> tuple[Migration, ...]:
    """All migrations in order, rendered for *database* (and ``ON CLUSTER`` *cluster*)."""
    canonical = _rendered("default", None)
    return tuple(
        Migration(m.version, m.name, m.statements, _checksum(c.statements))
        for m, c in zip(_rendered(database, cluster), canonical, strict=True)
    )


def _rendered(database: str, cluster: str | None) -> tuple[Migration, ...]:
    db, cl = database, _cluster_string(cluster)
    approvals_engine = (
        f"ReplicatedReplacingMergeTree({REPLICA_PATH}, updated_at)" if cluster else "ReplacingMergeTree(updated_at)"
    )
    return (
        Migration(1, f"collector {COLLECTOR_VERSION} otel_traces schema", _collector_statements(db, cluster)),
        Migration(
            2,
            "typed decisions table",
            _typed_statements("decisions", _DECISION_COLUMNS_V2, "decision_id", decision_span_predicate(), db, cluster),
        ),
        Migration(
            3,
            "typed decision_reviews table",
            _typed_statements("decision_reviews", REVIEW_COLUMNS, "review_id", review_span_predicate(), db, cluster),
        ),
        Migration(
            4,
            "model_approvals table",
            (
                f"CREATE TABLE IF NOT EXISTS {_ident(db)}.`model_approvals` {cl} (\n"
                "    model_name LowCardinality(String),\n"
                "    model_version LowCardinality(String),\n"
                "    approved_from DateTime64(3),\n"
                "    approved_until Nullable(DateTime64(3)),\n"
                "    approved_by String,\n"
                "    note String,\n"
                "    updated_at DateTime64(3) DEFAULT now64(3)\n"
                f") ENGINE = {approvals_engine}\nORDER BY (model_name, model_version, approved_from)",
            ),
        ),
        Migration(5, "record life cycle: retention, holds, disposal, erasure, events, access", _lifecycle(db, cluster)),
    )


def _lifecycle(db: str, cluster: str | None) -> tuple[str, ...]:
    """Migration 5: the decision columns the life cycle needs, ``decision_events``, and the life-cycle registers."""
    cl = _cluster_string(cluster)
    table = f"{_ident(db)}.`decisions`"
    added = [col for col in DECISION_COLUMNS if col.key in LIFECYCLE_DECISION_KEYS]
    source = f"{_ident(db)}.{_ident(TRACES_TABLE)}"
    select = typed_select(DECISION_COLUMNS, source, decision_span_predicate())
    column_list = ", ".join([c for c, _t, _e in SPAN_COLUMNS] + [col.name for col in DECISION_COLUMNS])
    merge = f"ReplicatedMergeTree({REPLICA_PATH})" if cluster else "MergeTree()"
    replacing = (
        f"ReplicatedReplacingMergeTree({REPLICA_PATH}, updated_at)" if cluster else "ReplacingMergeTree(updated_at)"
    )

    def register(name: str, columns: str, order: str, engine: str = merge) -> str:
        return f"CREATE TABLE IF NOT EXISTS {_ident(db)}.{_ident(name)} {cl} (\n{columns}\n) ENGINE = {engine}\nORDER BY {order}"

    return (
        *(f"ALTER TABLE {table} {cl} ADD COLUMN IF NOT EXISTS {col.name} {col.codec}" for col in added),
        # The view is re-created with every column; rows it missed meanwhile are re-derived below.
        f"DROP VIEW IF EXISTS {_ident(db)}.`decisions_mv` {cl}",
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS {_ident(db)}.`decisions_mv` {cl}\nTO {table} ({column_list})\nAS {select}",
        # Re-derive every decision with the new columns (the newest ingested_at wins in FINAL).
        f"INSERT INTO {table} ({column_list})\n{select}",
        *_typed_statements("decision_events", EVENT_COLUMNS, "event_id", event_span_predicate(), db, cluster),
        register(
            "legal_holds",
            "    hold_id String,\n    action LowCardinality(String),\n    scope LowCardinality(String),\n"
            "    target String,\n    reason String,\n    reference String,\n    actor String,\n    source String,\n"
            "    at DateTime64(3) DEFAULT now64(3)",
            "(hold_id, at, target)",
        ),
        f"CREATE VIEW IF NOT EXISTS {_ident(db)}.`active_legal_holds` {cl} AS\n"
        f"SELECT hold_id, scope, target, reason, reference, actor, source, at FROM {_ident(db)}.`legal_holds`\n"
        f"WHERE action = 'place' AND hold_id NOT IN (SELECT hold_id FROM {_ident(db)}.`legal_holds` WHERE action = 'release')",
        register(
            "lifecycle_operations",
            "    operation_id String,\n    kind LowCardinality(String),\n    at DateTime64(3),\n    actor String,\n"
            "    request String,\n    detail String,\n    deleted UInt64,\n    kept UInt64,\n"
            "    digest String,\n    signature String,\n    key_id String",
            "(at, operation_id)",
        ),
        register(
            "lifecycle_records",
            "    operation_id String,\n    kind LowCardinality(String),\n    action LowCardinality(String),\n"
            "    record_kind LowCardinality(String),\n    record_id String,\n    decision_id String,\n"
            "    chain String,\n    seq Int64,\n    hash String,\n    prev_hash String,\n    retain_until Nullable(Date32),\n"
            "    obligation String,\n    at DateTime64(3)",
            "(operation_id, record_id)",
        ),
        register(
            "retention_policies",
            "    policy_id String,\n    policy String,\n    recorded_by String,\n    source String,\n"
            "    recorded_at DateTime64(3) DEFAULT now64(3)",
            "(recorded_at, policy_id)",
        ),
        register(
            "access_log",
            "    at DateTime64(6) DEFAULT now64(6),\n    source LowCardinality(String),\n    db_user String,\n"
            "    os_user String,\n    command String,\n    query_name String,\n    parameters String,\n"
            "    subject_ids Array(String),\n    tables Array(String),\n    rows UInt64,\n    phi_rows UInt64,\n"
            "    export_format String,\n    query_id String",
            "(at)",
        ),
        register(
            "incidents",
            "    incident_id String,\n    title String,\n    model_name LowCardinality(String),\n"
            "    model_version LowCardinality(String),\n    opened_at DateTime64(3),\n"
            "    closed_at Nullable(DateTime64(3)),\n    reference String,\n    opened_by String,\n"
            "    updated_at DateTime64(3) DEFAULT now64(3)",
            "(incident_id)",
            replacing,
        ),
    )


def _migrations_table_sql(db: str, cluster: str | None) -> str:
    engine = f"ReplicatedMergeTree({REPLICA_PATH})" if cluster else "MergeTree()"
    return (
        f"CREATE TABLE IF NOT EXISTS {_ident(db)}.`schema_migrations` {_cluster_string(cluster)} (\n"
        "    version UInt32,\n    name String,\n    checksum String,\n"
        "    applied_at DateTime64(3) DEFAULT now64(3)\n"
        f") ENGINE = {engine}\nORDER BY version"
    )


def render_ddl(database: str = "default", cluster: str | None = None) -> list[str]:
    """Every statement ``schema apply`` may run, in order (for review or a DBA)."""
    statements = []
    if database != "default":
        statements.append(f"CREATE DATABASE IF NOT EXISTS {_go_quote(database)} {_cluster_string(cluster)}".rstrip())
    statements.append(_migrations_table_sql(database, cluster))
    for migration in migrations(database, cluster):
        statements.extend(migration.statements)
    return statements


def role_ddl(database: str = "default", cluster: str | None = None) -> list[str]:
    """The writer, reader and admin roles on a ClickHouse server (``schema apply --roles``).

    The same grants the embedded database's owner puts in its users configuration
    (:func:`otel_decisions.store.embedded.role_grants`). Assign the roles to your users with
    ``GRANT otel_writer_role TO <user>``; no role may reach files, URLs, programs or other servers.
    """
    on_cluster = f" {_cluster_string(cluster)}" if cluster else ""
    statements = []
    grants = embedded.role_grants(database)
    for role in embedded.ROLES:
        name = embedded.ROLE_NAMES[role]
        statements.append(f"CREATE ROLE IF NOT EXISTS {name}{on_cluster}")
        statements += [grant.replace("GRANT ", f"GRANT{on_cluster} ", 1) + f" TO {name}" for grant in grants[role]]
    return statements


def applied_versions(client: Any, database: str | None = None) -> dict[int, tuple[str, str]]:
    """Applied migration versions with their names and checksums (empty if the store was never initialised)."""
    db = database or getattr(client, "database", None) or "default"
    exists = client.command(
        "SELECT count() FROM system.tables WHERE database = {db:String} AND name = 'schema_migrations'",
        parameters={"db": db},
    )
    if not int(exists):
        return {}
    rows = client.query(
        f"SELECT version, name, checksum FROM {_ident(db)}.schema_migrations ORDER BY version"
    ).result_rows
    return {int(version): (name, checksum) for version, name, checksum in rows}


def apply_migrations(client: Any, *, database: str | None = None, cluster: str | None = None) -> list[Migration]:
    """Run the migrations not yet applied; returns those it ran. Safe to call repeatedly."""
    db = database or getattr(client, "database", None) or "default"
    try:
        if db != "default":
            client.command(f"CREATE DATABASE IF NOT EXISTS {_go_quote(db)} {_cluster_string(cluster)}".rstrip())
        client.command(_migrations_table_sql(db, cluster))
        done = applied_versions(client, db)
        ran: list[Migration] = []
        for migration in migrations(db, cluster):
            if migration.version in done:
                if done[migration.version][1] != migration.checksum:
                    logger.warning(
                        "otel-decisions: migration %d (%s) was applied to %r from a different definition than this "
                        "version's; the store's schema may differ from what queries expect. Compare with "
                        "`otel-decisions schema apply --dry-run` and migrate the data to a fresh store if they differ.",
                        migration.version,
                        migration.name,
                        db,
                    )
                continue
            for statement in migration.statements:
                client.command(statement)
            client.insert(
                f"{db}.schema_migrations",
                [[migration.version, migration.name, migration.checksum]],
                column_names=["version", "name", "checksum"],
            )
            logger.info("otel-decisions: applied migration %d (%s)", migration.version, migration.name)
            ran.append(migration)
        ensure_query_log_feed(client, db, cluster=cluster)  # raw SQL reads of decision data reach access_log
        return ran
    except OtelDecisionsError:
        raise
    except Exception as exc:
        raise store_error(exc, f"schema apply in database {db!r}") from exc


def traces_ttl_sql(days: int | None, database: str = "default", cluster: str | None = None) -> str:
    """``ALTER TABLE otel_traces`` setting a TTL that never deletes decision or review spans.

    ``days=None`` (or 0) removes the TTL. The expression is the exporter's
    (``internal.GenerateTTLExpr``) plus ``WHERE`` that excludes our spans.
    """
    target = f"{_ident(database)}.{_ident(TRACES_TABLE)} {_cluster_string(cluster)}".rstrip()
    if not days:
        return f"ALTER TABLE {target} REMOVE TTL"
    if days < 0:
        raise OtelDecisionsError(f"traces TTL: days must be positive, got {days}")
    keep = semconv.record_sql()
    return (
        f"ALTER TABLE {target} MODIFY TTL toDateTime(Timestamp) + toIntervalDay({int(days)}) DELETE WHERE NOT ({keep})"
    )


def store_info(client: Any, database: str | None = None) -> dict[str, Any]:
    """Version, applied/pending migrations and row counts of the decision store (for ``db info``)."""
    db = database or getattr(client, "database", None) or "default"
    done = applied_versions(client, db)
    pending = [m.version for m in migrations(db) if m.version not in done]
    drifted = [m.version for m in migrations(db) if m.version in done and done[m.version][1] != m.checksum]
    info: dict[str, Any] = {
        "server_version": client.command("SELECT version()"),
        "database": db,
        "collector_schema": COLLECTOR_VERSION,
        "migrations_applied": sorted(done),
        "migrations_pending": pending,
        "migrations_drifted": drifted,
    }
    tables = {
        name: (int(rows), int(size))
        for name, rows, size in client.query(
            "SELECT name, ifNull(total_rows, 0), ifNull(total_bytes, 0) FROM system.tables WHERE database = {db:String}",
            parameters={"db": db},
        ).result_rows
    }
    for name in (TRACES_TABLE, "decisions", "decision_reviews", "decision_events", "model_approvals", "legal_holds"):
        info[f"{name}_rows"] = tables[name][0] if name in tables else None
    if "decisions" in tables:
        info["decisions_distinct"] = int(client.command(f"SELECT count() FROM {_ident(db)}.decisions FINAL"))
    info["bytes_on_disk"] = sum(size for _rows, size in tables.values())
    return info
