"""``reconcile``: every task run Prefect's API reports is accounted for against the store, on real
Prefect (the session's test harness) and a real embedded store."""

from __future__ import annotations

import json
import time

import pytest
from prefect import flow, task
from typer.testing import CliRunner

import otel_decisions
from otel_decisions.cli import app
from otel_decisions.reconcile import reconcile
from otel_decisions.store.client import get_client
from tests.seed import fresh_chdb_dsn

pytestmark = pytest.mark.usefixtures("prefect_harness")


@task
def decide(n: int) -> dict:
    return {"decision": "approve", "confidence": 0.9}


@task
def prepare(n: int) -> int:
    return n + 1


@flow
def underwriting() -> str:
    from prefect.context import FlowRunContext

    decide(prepare(1))
    context = FlowRunContext.get()
    assert context is not None and context.flow_run is not None
    return str(context.flow_run.id)


def _finished(store, flow_run_id: str, expected: int):
    """Prefect records task-run states through its event pipeline: wait until both are reported."""
    deadline = time.monotonic() + 60
    report = reconcile(store, flow_run_id=flow_run_id)
    while len(report.runs) < expected and time.monotonic() < deadline:
        time.sleep(0.5)
        report = reconcile(store, flow_run_id=flow_run_id)
    return report


def test_reconcile_tells_recorded_instrumented_and_unaccounted_task_runs(tmp_path) -> None:
    dsn = fresh_chdb_dsn("reconcile")
    otel_decisions.configure(exporters=["clickhouse"], dsn=dsn, durable=False, data_dir=str(tmp_path),
                             hmac_key="reconcile-test-key-0123456789")
    instrumentor = otel_decisions.PrefectInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    recorded_run = underwriting()
    otel_decisions.force_flush()
    store = get_client(dsn, role="reader")
    report = _finished(store, recorded_run, 2)
    assert sorted((r.task_name.split("-")[0], r.classification, r.decisions) for r in report.runs) == [
        ("decide", "recorded", 1), ("prepare", "instrumented", 0)]
    assert not report.unaccounted

    otel_decisions.shutdown()  # now the tasks run in a process that records nothing
    silent_run = underwriting()
    report = _finished(store, silent_run, 2)
    assert sorted((r.task_name.split("-")[0], r.classification) for r in report.runs) == [
        ("decide", "unaccounted"), ("prepare", "unaccounted")]

    runner = CliRunner()
    ok = runner.invoke(app, ["reconcile", "--flow-run", recorded_run, "--dsn", dsn, "--format", "json"])
    assert ok.exit_code == 0, ok.output
    missing = runner.invoke(app, ["reconcile", "--flow-run", silent_run, "--dsn", dsn, "--format", "json"])
    assert missing.exit_code == 1, missing.output
    rows = json.loads(missing.stdout.split("\n{")[0] if "\n{" in missing.stdout else missing.stdout)
    assert {row["classification"] for row in rows} == {"unaccounted"} and len(rows) == 2
    bad = runner.invoke(app, ["reconcile", "--dsn", dsn])
    assert bad.exit_code == 2 and "--flow-run" in bad.output
