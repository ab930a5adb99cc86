"""The ``prefect.plugins`` entry point: a flow that imports nothing from otel-decisions records, in a
plain ``python flow.py``, when Prefect's plugins are enabled; Prefect's server processes are skipped."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from otel_decisions.sdk._plugin import is_prefect_server_process

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "apps" / "uninstrumented_flow.py"

pytestmark = pytest.mark.slow


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OTEL_", "PREFECT_"))}
    env.update({
        "OTEL_DECISIONS_DATA_DIR": str(tmp_path / "data"),
        "OTEL_DECISIONS_HMAC_KEY": "plugin-test-key-0123456789",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        **extra,
    })
    return env


def _stored(tmp_path: Path, env: dict[str, str]) -> list[dict]:
    dsn = f"chdb://{tmp_path / 'data' / 'chdb'}"
    result = subprocess.run(
        [sys.executable, "-m", "otel_decisions.cli", "query", "run", "decision_volume_daily", "--dsn", dsn, "--format", "json"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    if result.returncode == 3:  # no decision store: nothing was recorded there
        return []
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def test_the_plugin_is_registered_with_prefect() -> None:
    (entry,) = [ep for ep in metadata.entry_points(group="prefect.plugins") if ep.name == "otel_decisions"]
    assert entry.value == "otel_decisions.sdk._plugin"


def test_a_flow_with_no_otel_decisions_code_records_with_the_plugin(tmp_path: Path) -> None:
    env = _env(tmp_path, PREFECT_PLUGINS_ENABLED="true", OTEL_DECISIONS_EXPORTERS="clickhouse")
    run = subprocess.run([sys.executable, str(APP)], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "RESULT [{'label': 'legit', 'probability': 0.88}, {'label': 'fraud', 'probability': 0.93}]" in run.stdout
    (row,) = _stored(tmp_path, env)
    assert (row["decision_type"], row["decisions"]) == ("screen", 2)


def test_without_the_plugin_nothing_is_recorded(tmp_path: Path) -> None:
    env = _env(tmp_path, PREFECT_PLUGINS_ENABLED="false", OTEL_DECISIONS_EXPORTERS="clickhouse")
    run = subprocess.run([sys.executable, str(APP)], env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert _stored(tmp_path, env) == []


@pytest.mark.parametrize(
    ("argv", "server"),
    [
        (["/venv/bin/prefect", "server", "start"], True),
        (["/venv/bin/python", "-m", "uvicorn", "--factory", "prefect.server.api.server:create_app"], True),
        (["/venv/bin/prefect", "worker", "start", "--pool", "p"], False),
        (["/venv/bin/python", "-m", "prefect.engine"], False),
        (["flow.py"], False),
    ],
)
def test_prefect_server_processes_are_left_alone(argv: list[str], server: bool) -> None:
    assert is_prefect_server_process(argv) is server


@pytest.mark.parametrize("launcher", ["plugin", "opentelemetry-instrument"])
def test_setup_does_not_import_prefect_engine(tmp_path: Path, launcher: str) -> None:
    """A worker's flow run is `python -m prefect.engine`: if setup imported prefect.engine first, runpy
    would print "RuntimeWarning: 'prefect.engine' found in sys.modules" in every flow run."""
    probe = (
        "import sys, prefect, otel_decisions\n"
        "from opentelemetry import trace\n"
        "print('configured', type(trace.get_tracer_provider()).__name__)\n"
        "print('engine imported', 'prefect.engine' in sys.modules)\n"
    )
    env = _env(tmp_path, OTEL_DECISIONS_EXPORTERS="none")
    command = [sys.executable, "-W", "error::RuntimeWarning", "-c", probe]
    if launcher == "plugin":
        env["PREFECT_PLUGINS_ENABLED"] = "true"
    else:
        command = [str(Path(sys.executable).parent / "opentelemetry-instrument"), *command]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "configured TracerProvider" in run.stdout and "engine imported False" in run.stdout
    assert "RuntimeWarning" not in run.stderr


POOL_APP = ROOT / "tests" / "apps" / "process_pool_flow.py"


def test_process_pool_decisions_are_in_the_flow_runs_trace_and_counted_once(tmp_path: Path) -> None:
    """ProcessPoolTaskRunner: the plugin records in the pool's workers; each decision is a child of its
    task-run span, in the flow run's trace (Prefect alone would start a trace per task there), and the
    completeness query counts every decision once (no negative 'missing')."""
    env = _env(tmp_path, PREFECT_PLUGINS_ENABLED="true", OTEL_DECISIONS_EXPORTERS="clickhouse")
    run = subprocess.run([sys.executable, str(POOL_APP), "6"], env=env, capture_output=True, text=True, timeout=600,
                         cwd=tmp_path)
    assert run.returncode == 0 and "RESULT 6" in run.stdout, run.stderr[-3000:]
    from otel_decisions.store.client import get_client

    client = get_client(f"chdb://{tmp_path / 'data' / 'chdb'}", role="reader")
    (flow_trace,) = client.query(
        "SELECT DISTINCT TraceId FROM otel_traces WHERE SpanAttributes['prefect.run.type'] = 'flow'"
    ).result_rows
    decisions = client.query(
        "SELECT d.TraceId, t.SpanAttributes['prefect.run.type'], t.SpanAttributes['prefect.run.id'], "
        "d.SpanAttributes['prefect.task_run.id'] FROM otel_traces AS d "
        "LEFT JOIN otel_traces AS t ON d.ParentSpanId = t.SpanId AND d.TraceId = t.TraceId "
        "WHERE startsWith(d.SpanName, 'decision ')"
    ).result_rows
    assert len(decisions) == 6
    for trace_id, parent_type, parent_run_id, task_run_id in decisions:
        assert trace_id == flow_trace[0]
        assert parent_type == "task" and parent_run_id == task_run_id
    result = subprocess.run(
        [sys.executable, "-m", "otel_decisions.cli", "query", "run", "delivery_completeness", "--dsn",
         f"chdb://{tmp_path / 'data' / 'chdb'}", "--format", "json"],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(result.stdout)
    assert (row["captured"], row["stored"], row["missing"]) == (6, 6, 0)


def test_no_prefect_server_span_reaches_the_store_from_a_temporary_server(tmp_path: Path) -> None:
    """A flow with no PREFECT_API_URL runs Prefect's temporary server in its own process; its spans
    (docket's task queue, the API) are not decision records and are not stored."""
    env = _env(tmp_path, OTEL_DECISIONS_EXPORTERS="clickhouse")
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    run = subprocess.run([str(instrument), sys.executable, str(APP)], env=env, capture_output=True, text=True,
                         timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    from otel_decisions.store.client import get_client

    client = get_client(f"chdb://{tmp_path / 'data' / 'chdb'}", role="reader")
    scopes = {row[0] for row in client.query("SELECT DISTINCT ScopeName FROM otel_traces").result_rows}
    assert "otel_decisions" in scopes and "prefect" in scopes  # decisions and Prefect's run spans are stored
    assert not [s for s in scopes if s.startswith(("docket", "opentelemetry.instrumentation.fastapi", "prefect.server"))]
    assert client.command("SELECT uniqExact(decision_id) FROM decisions") == 2  # at-least-once: copies dedupe
