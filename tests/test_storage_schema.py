"""Schema: the collector's DDL verbatim, cluster rendering, idempotent migrations, backfill, TTL safety."""

from __future__ import annotations

import subprocess
from datetime import datetime, timezone
from pathlib import Path

import pytest

from otel_decisions import semconv
from otel_decisions.store import schema
from otel_decisions.store.client import get_client
from otel_decisions.store.exporter import ClickHouseSpanExporter
from tests.seed import build_seed, fresh_chdb_dsn

EXPORTER_MODULE = "github.com/open-telemetry/opentelemetry-collector-contrib/exporter/clickhouseexporter@v0.161.0"


def _exporter_source() -> Path | None:
    try:
        modcache = subprocess.run(["go", "env", "GOMODCACHE"], capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        modcache = ""
    root = Path(modcache or Path.home() / "go" / "pkg" / "mod") / EXPORTER_MODULE
    return root if root.is_dir() else None


@pytest.fixture
def client():
    c = get_client(fresh_chdb_dsn("schema"), role="admin")
    yield c
    c.close()


def test_collector_templates_are_verbatim_copies_of_the_pinned_release():
    source = _exporter_source()
    if source is None:
        pytest.skip(f"Go module {EXPORTER_MODULE} not in the module cache (go mod download it to run this check)")
    templates = source / "internal" / "sqltemplates"
    assert schema._TRACES_TABLE_SQL == (templates / "traces_table.sql").read_text()
    assert schema._TRACES_ID_TS_TABLE_SQL == (templates / "traces_id_ts_lookup_table.sql").read_text()
    assert schema._TRACES_ID_TS_MV_SQL == (templates / "traces_id_ts_lookup_mv.sql").read_text()


def test_rendered_collector_ddl_substitutes_like_the_exporter():
    traces, ts_table, ts_mv = schema.migrations("otel")[0].statements
    # exporter_traces.go: fmt.Sprintf(TracesCreateTable, db, table, cluster, engine, ttl) with %q names
    assert traces.startswith('CREATE TABLE IF NOT EXISTS "otel"."otel_traces"  (\n')
    assert ") ENGINE = MergeTree()\nPARTITION BY toDate(Timestamp)\n" in traces
    assert "ORDER BY (ServiceName, SpanName, toDateTime(Timestamp))\n\nSETTINGS index_granularity=8192, ttl_only_drop_parts = 1" in traces
    assert ts_table.startswith('CREATE TABLE IF NOT EXISTS "otel"."otel_traces_trace_id_ts"  (')
    assert 'CREATE MATERIALIZED VIEW IF NOT EXISTS "otel"."otel_traces_trace_id_ts_mv" \nTO "otel"."otel_traces_trace_id_ts"' in ts_mv
    assert 'FROM "otel"."otel_traces"' in ts_mv
    assert "TTL" not in traces  # no TTL unless asked for, and then only for non-decision spans


def test_cluster_variant_renders_replicated_engines_and_on_cluster():
    statements = schema.render_ddl("otel", cluster="prod`x")
    cluster = "ON CLUSTER `prod``x`"
    creates = [s for s in statements if s.startswith("CREATE")]
    assert creates and all(cluster in s for s in creates)
    tables = [s for s in creates if s.startswith("CREATE TABLE")]
    assert all("ENGINE = Replicated" in s for s in tables)
    assert not any("ENGINE = MergeTree" in s or "ENGINE = ReplacingMergeTree" in s for s in statements)
    by_name = {s.split("\n")[0]: s for s in tables}
    decisions = next(s for head, s in by_name.items() if "`decisions`" in head)
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', ingested_at)" in decisions
    traces = next(s for head, s in by_name.items() if '"otel_traces"' in head)
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}')" in traces
    assert statements[0] == 'CREATE DATABASE IF NOT EXISTS "otel" ON CLUSTER `prod``x`'
    ttl = schema.traces_ttl_sql(30, "otel", cluster="prod")
    assert ttl.startswith("ALTER TABLE `otel`.`otel_traces` ON CLUSTER `prod` MODIFY TTL")
    # single node: nothing replicated, no ON CLUSTER
    assert not any("ON CLUSTER" in s or "Replicated" in s for s in schema.render_ddl("otel"))


def test_migrations_are_versioned_and_idempotent(client):
    ran = schema.apply_migrations(client)
    assert [m.version for m in ran] == [1, 2, 3, 4, 5]
    assert schema.apply_migrations(client) == []
    assert schema.applied_versions(client) == {m.version: (m.name, m.checksum) for m in schema.migrations()}
    assert client.command("SELECT count() FROM schema_migrations") == 5
    tables = {r[0] for r in client.query("SELECT name FROM system.tables WHERE database = currentDatabase()").result_rows}
    assert {"otel_traces", "otel_traces_trace_id_ts", "otel_traces_trace_id_ts_mv", "decisions", "decisions_mv",
            "decision_reviews", "decision_reviews_mv", "model_approvals", "schema_migrations", "decision_events",
            "decision_events_mv", "legal_holds", "lifecycle_operations", "lifecycle_records", "retention_policies",
            "access_log", "incidents"} <= tables


def test_a_migration_applied_from_another_definition_is_reported(client, caplog):
    schema.apply_migrations(client)
    client.command("ALTER TABLE schema_migrations UPDATE checksum = 'not-this-version' WHERE version = 2 SETTINGS mutations_sync = 1")
    with caplog.at_level("WARNING", logger="otel_decisions"):
        assert schema.apply_migrations(client) == []
    assert "migration 2 (typed decisions table)" in caplog.text and "different definition" in caplog.text
    assert schema.store_info(client)["migrations_drifted"] == [2]


def test_decisions_has_a_typed_column_for_every_semconv_attribute(client):
    schema.apply_migrations(client)
    types = dict(client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'decisions'"
    ).result_rows)
    expected_type = {"string": "String", "string[]": "Array(String)", "double": "Nullable(Float64)", "bool": "Bool", "int": "Nullable(Int64)", "date": "Nullable(Date32)"}
    assert {c.key for c in schema.DECISION_COLUMNS} == set(semconv.DECISION_ATTRIBUTES)
    assert semconv.DECISION_FLOW_CAPTURED not in {c.key for c in schema.DECISION_COLUMNS}
    for column in schema.DECISION_COLUMNS:
        kind = semconv.DECISION_ATTRIBUTES[column.key][0]
        assert types[column.name] in (expected_type[kind], f"LowCardinality({expected_type[kind]})"), column.name
    assert types["timestamp"] == "DateTime64(9)"
    assert "ReplacingMergeTree" in client.command("SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = 'decisions'")
    review_types = dict(client.query(
        "SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = 'decision_reviews'"
    ).result_rows)
    assert {c.name for c in schema.REVIEW_COLUMNS} <= set(review_types)
    assert review_types["decided_at_ns"] == "Nullable(Int64)"


def test_backfill_picks_up_rows_stored_before_the_view(client):
    first = schema.migrations(client.database)[0]
    client.command(schema._migrations_table_sql(client.database, None))
    for statement in first.statements:
        client.command(statement)
    client.insert(f"{client.database}.schema_migrations", [[1, first.name, first.checksum]], column_names=["version", "name", "checksum"])
    data = build_seed(40, seed=3)
    exporter = ClickHouseSpanExporter(client=client, ensure_schema=False)
    assert exporter.export(data.spans).name == "SUCCESS"  # only otel_traces exists now
    ran = schema.apply_migrations(client)
    assert [m.version for m in ran] == [2, 3, 4, 5]
    assert client.command("SELECT count() FROM decisions FINAL") == 40
    assert client.command("SELECT count() FROM decision_reviews FINAL") == len(data.reviews)
    # and the view keeps feeding it afterwards; re-delivery of the old spans does not double count
    assert exporter.export(data.spans).name == "SUCCESS"
    assert client.command("SELECT count() FROM decisions FINAL") == 40


def test_traces_ttl_never_removes_decision_or_review_rows(client):
    schema.apply_migrations(client)
    old = datetime(2020, 3, 2, tzinfo=timezone.utc)
    data = build_seed(30, seed=5, start=old, days=1)
    exporter = ClickHouseSpanExporter(client=client)
    assert exporter.export(data.spans).name == "SUCCESS"
    decision_spans = sum(s.name.startswith(semconv.DECISION_SPAN_PREFIX) for s in data.spans)
    review_spans = sum(s.name == semconv.REVIEW_SPAN_NAME for s in data.spans)
    other_spans = len(data.spans) - decision_spans - review_spans
    assert other_spans > 0
    client.command(schema.traces_ttl_sql(1, client.database))
    assert "DELETE WHERE NOT" in schema.traces_ttl_sql(1)
    client.command("ALTER TABLE otel_traces MATERIALIZE TTL SETTINGS mutations_sync = 2")
    client.command("OPTIMIZE TABLE otel_traces FINAL")
    # the TTL did run: every expired non-decision span is gone ...
    assert client.command(
        f"SELECT count() FROM otel_traces WHERE NOT ({schema.decision_span_predicate()}) AND SpanName != '{semconv.REVIEW_SPAN_NAME}'"
    ) == 0
    # ... and no decision or review span was removed, nor any typed row
    assert client.command(f"SELECT count() FROM otel_traces WHERE {schema.decision_span_predicate()}") == decision_spans
    assert client.command(f"SELECT count() FROM otel_traces WHERE SpanName = '{semconv.REVIEW_SPAN_NAME}'") == review_spans
    assert client.command("SELECT count() FROM decisions FINAL") == 30
    assert client.command("SELECT count() FROM decision_reviews FINAL") == review_spans
    for table in ("decisions", "decision_reviews"):
        assert "TTL" not in client.command(f"SHOW CREATE TABLE {table}")
    assert "WHERE NOT (startsWith(SpanName, " in client.command("SHOW CREATE TABLE otel_traces")
    client.command(schema.traces_ttl_sql(0, client.database))
    assert "TTL" not in client.command("SHOW CREATE TABLE otel_traces")


def test_schema_apply_reports_a_store_failure_as_a_store_error(client):
    from otel_decisions.errors import StoreError

    with pytest.raises(StoreError, match="schema apply in database .* failed") as info:
        schema.apply_migrations(client, cluster="no_such_cluster")
    assert info.value.exit_code == 4


def test_role_ddl_for_a_server_and_a_cluster():
    statements = schema.role_ddl("otel", cluster="prod")
    assert "CREATE ROLE IF NOT EXISTS otel_writer_role ON CLUSTER `prod`" in statements
    writer = [s for s in statements if s.endswith("TO otel_writer_role")]
    assert writer == ["GRANT ON CLUSTER `prod` INSERT ON otel.otel_traces TO otel_writer_role"]
    reader = [s for s in statements if s.endswith("TO otel_reader_role")]
    assert reader == ["GRANT ON CLUSTER `prod` SELECT ON otel.* TO otel_reader_role",
                      "GRANT ON CLUSTER `prod` INSERT ON otel.access_log TO otel_reader_role"]
    everything = " ".join(statements)
    for reach in ("FILE", "URL", "S3", "REMOTE", "SOURCES", "CREATE TEMPORARY TABLE", "ALL"):
        assert f" {reach} " not in f" {everything.upper()} ".replace(",", " "), reach
    assert not any("ON CLUSTER" in s for s in schema.role_ddl("otel"))
