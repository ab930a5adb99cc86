"""The server code path (``http://user:password@host:port/db`` DSNs) against the served embedded database.

``otel-decisions serve`` serves the embedded database through ClickHouse's own HTTP listener,
so a ``http://`` DSN naming one of its users reaches exactly the store a ``chdb:///DIR`` DSN
reaches (the package itself connects through the same listener). This checks the DSN paths,
not two engines: the client factory and ``schema apply`` (CLI and function) with a server DSN,
the span exporter writing as ``otel_writer`` through one, and every catalogue query giving the
same answer through ``http://`` as through ``chdb://``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_serve_collector import ServedStore, cli, serve_store

SEED_N = 200
SEED = 11


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedStore]:
    yield from serve_store(tmp_path_factory.mktemp("served-paths") / "chdb")


def test_client_factory_with_http_dsn(served: ServedStore) -> None:
    from otel_decisions.errors import OtelDecisionsError
    from otel_decisions.store.client import database_of, get_client

    root = get_client(served.http_dsn("admin", "").rstrip("/"))  # no database in the DSN: `default`
    assert root.command("SELECT 1") == 1
    assert root.server_version
    assert root.command("SELECT currentUser()") == "otel_admin"
    root.command("CREATE DATABASE IF NOT EXISTS otel_factory")

    admin = get_client(served.http_dsn("admin", "otel_factory"))
    assert database_of(admin) == "otel_factory"
    admin.command("CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = MergeTree ORDER BY a")
    writer = get_client(served.http_dsn("writer", "otel_factory"))
    writer.insert("t", [[1], [2]], column_names=["a"])
    reader = get_client(served.http_dsn("reader", "otel_factory"))
    assert reader.command("SELECT sum(a) FROM t") == 3
    # the same table through the embedded DSN: one store
    assert served.client("reader", database="otel_factory").command("SELECT sum(a) FROM t") == 3
    # the DSN's user is who the engine sees: its grants apply
    with pytest.raises(Exception, match="ACCESS_DENIED|Not enough privileges"):
        reader.command("CREATE TABLE u (a UInt8) ENGINE = MergeTree ORDER BY a")
    with pytest.raises(Exception, match="ACCESS_DENIED|Not enough privileges"):
        writer.command("SELECT count() FROM t")
    user, password = served.user("reader")
    wrong = served.http_dsn("reader", "otel_factory").replace(f":{password}@", ":not-the-password@")
    with pytest.raises(OtelDecisionsError) as failure:
        get_client(wrong).command("SELECT 1")
    assert "not-the-password" not in str(failure.value) and password not in str(failure.value)


def test_schema_apply_cli_with_http_dsn(served: ServedStore, tmp_path: Path) -> None:
    from otel_decisions.store.client import get_client

    root = get_client(served.http_dsn("admin", "").rstrip("/"))
    root.command("CREATE DATABASE IF NOT EXISTS otel_cli")
    outputs = []
    for _ in range(2):  # idempotent
        done = cli(tmp_path, "schema", "apply", "--dsn", served.http_dsn("admin", "otel_cli"))
        assert done.returncode == 0, done.stdout + done.stderr
        outputs.append(done.stdout)
    assert "up to date" in outputs[1], outputs
    tables = {row[0] for row in served.client("admin").query("SHOW TABLES FROM otel_cli").result_rows}
    assert {"otel_traces", "otel_traces_trace_id_ts", "decisions", "decision_reviews", "schema_migrations"} <= tables
    # a reader's DSN cannot create the schema, and says why (without its password)
    root.command("CREATE DATABASE IF NOT EXISTS otel_cli_denied")
    done = cli(tmp_path, "schema", "apply", "--dsn", served.http_dsn("reader", "otel_cli_denied"))
    said = done.stdout + done.stderr
    assert done.returncode != 0 and "privilege" in said.lower(), said
    assert served.user("reader")[1] not in said
    assert not root.query("SHOW TABLES FROM otel_cli_denied").result_rows


def _catalogue(client: Any, required: dict[str, str]) -> dict[str, Any]:
    from otel_decisions.catalogue import load_catalogue, run_query

    out: dict[str, Any] = {"_decisions": client.command("SELECT count() FROM decisions FINAL")}
    for name, query in sorted(load_catalogue().items()):
        if name == "access_audit":
            continue  # its rows are the reads themselves: each path adds its own
        params = {p.name: required[p.name] for p in query.params if p.required}
        result = run_query(client, query, params)
        out[name] = {
            "columns": result.columns,
            "rows": sorted(json.dumps(list(row), default=str) for row in result.rows),
        }
    return out


def test_every_catalogue_query_same_through_http_and_chdb_dsns(served: ServedStore) -> None:
    from otel_decisions.store.client import get_client
    from otel_decisions.store.exporter import ClickHouseSpanExporter
    from otel_decisions.store.schema import apply_migrations
    from tests.seed import seed_decisions

    database = "otel_catalogue"
    get_client(served.http_dsn("admin", "").rstrip("/")).command(f"CREATE DATABASE IF NOT EXISTS {database}")
    assert apply_migrations(get_client(served.http_dsn("admin", database)))  # the function, as the admin
    # the exporter's server path, as the INSERT-only writer a collector would use
    exporter = ClickHouseSpanExporter(served.http_dsn("writer", database), ensure_schema=False)
    try:
        data = seed_decisions(exporter, n=SEED_N, seed=SEED)
    finally:
        exporter.shutdown()
    first = data.decisions[0]
    required = {"decision_id": first.decision_id, "subject_id": first.subject_id, "flow_run_id": first.flow_run_id,
                "request": "DSR-none"}

    through_http = _catalogue(get_client(served.http_dsn("reader", database)), required)
    through_chdb = _catalogue(get_client(f"{served.dsn}?database={database}", role="reader"), required)
    assert through_http["_decisions"] == through_chdb["_decisions"] == SEED_N
    assert through_http == through_chdb
    assert len(through_http) > 10
    assert sum(1 for name, value in through_http.items() if not name.startswith("_") and value["rows"]) > 5
