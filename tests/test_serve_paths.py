"""The server code path (``http://`` DSN) exercised against ``otel-decisions serve``.

The client factory, ``schema apply`` (CLI and function), the ClickHouse span exporter and
every catalogue query run over HTTP; the same deterministic data set written through the
embedded path (``chdb://``, in a subprocess: one chDB engine per process) must give the
same answer to every query.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.test_serve import ServeProcess

REPO = Path(__file__).resolve().parent.parent
SEED_N = 200
SEED = 11
VOLATILE_COLUMNS = frozenset({"ingested_at"})


def catalogue_results(dsn: str) -> dict[str, Any]:
    """Seed the standard data set through the exporter at *dsn*, then run every catalogue query."""
    from otel_decisions.store.exporter import ClickHouseSpanExporter
    from otel_decisions.catalogue import load_catalogue, run_query
    from tests.seed import seed_decisions

    exporter = ClickHouseSpanExporter(dsn)  # opens the client through the factory, applies the schema
    random.seed(SEED)  # the SDK draws trace and span ids from `random`: same ids on both paths
    try:
        data = seed_decisions(exporter, n=SEED_N, seed=SEED)
        client = exporter._connect()
        first = data.decisions[0]
        required = {"decision_id": first.decision_id, "subject_id": first.subject_id, "flow_run_id": first.flow_run_id}
        out: dict[str, Any] = {"_decisions": client.command("SELECT count() FROM decisions FINAL")}
        for name, query in sorted(load_catalogue().items()):
            params = {p.name: required[p.name] for p in query.params if p.required}
            result = run_query(client, query, params)
            # when the row was written differs between two writes by design; everything else must not
            volatile = [i for i, column in enumerate(result.columns) if column in VOLATILE_COLUMNS]
            rows = []
            for row in result.rows:
                values = list(row)
                for i in volatile:
                    assert values[i] is not None
                    values[i] = "<write time>"
                rows.append(json.dumps(values, default=str))
            out[name] = {"columns": result.columns, "rows": rows}
        return out
    finally:
        exporter.shutdown()


_EMBEDDED = """
import json, sys
from tests.test_serve_paths import catalogue_results
json.dump(catalogue_results(sys.argv[1]), open(sys.argv[2], "w"))
"""


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("served") / "chdb").start()
    yield proc
    assert proc.stop() == 0, "".join(proc.output)


def test_client_factory_with_http_dsn(served: ServeProcess) -> None:
    from otel_decisions.store.client import get_client

    client = get_client(f"{served.url}/default")
    assert client.command("SELECT 1") == 1
    assert client.server_version
    client.command("CREATE DATABASE IF NOT EXISTS other")
    other = get_client(f"{served.url}/other")
    other.command("CREATE TABLE t (a UInt8) ENGINE = MergeTree ORDER BY a")
    assert client.command("SELECT count() FROM system.tables WHERE database = 'other' AND name = 't'") == 1


def test_schema_apply_cli_through_serve(served: ServeProcess) -> None:
    env = {**os.environ, "OTEL_DECISIONS_DSN": f"{served.url}/cli_db"}
    from otel_decisions.store.client import get_client

    get_client(served.url).command("CREATE DATABASE IF NOT EXISTS cli_db")
    for _ in range(2):  # idempotent
        done = subprocess.run(
            [sys.executable, "-c", "from otel_decisions.cli import main; main()", "schema", "apply"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
    tables = {
        row[0]
        for row in get_client(served.url).query("SELECT name FROM system.tables WHERE database = 'cli_db'").result_rows
    }
    assert {"otel_traces", "otel_traces_trace_id_ts", "decisions", "decision_reviews", "schema_migrations"} <= tables


def test_every_catalogue_query_matches_the_embedded_path(served: ServeProcess, tmp_path: Path) -> None:
    through_serve = catalogue_results(served.url)
    out = tmp_path / "embedded.json"
    done = subprocess.run(
        [sys.executable, "-c", _EMBEDDED, f"chdb://{tmp_path / 'embedded'}", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    embedded = json.loads(out.read_text())
    assert through_serve["_decisions"] == embedded["_decisions"] == SEED_N
    assert sorted(through_serve) == sorted(embedded)
    assert len(through_serve) > 10
    for name in embedded:
        if name.startswith("_"):
            continue
        assert through_serve[name]["columns"] == embedded[name]["columns"], name
        assert sorted(through_serve[name]["rows"]) == sorted(embedded[name]["rows"]), name
    assert any(embedded[name]["rows"] for name in embedded if not name.startswith("_"))
