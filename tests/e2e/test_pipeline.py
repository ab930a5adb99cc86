"""End to end with the real programs: Prefect → otel-decisions → otelcol-decisions → Jaeger v2.

Every test starts the binaries built by ``scripts/build-binaries`` on free loopback ports and
stops them after. The instrumented application runs in its own interpreter (tests/e2e/flow_app.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from otel_decisions import semconv

from e2e_harness import (
    CONFIG_DIR,
    Binaries,
    ManagedProcess,
    collector_metric,
    http_get,
    http_post_json,
    jaeger_query_url,
    jaeger_trace,
    run_flow_app,
    wait_for_jaeger_trace,
    wait_until,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(900)]

COLLECTOR_CONFIGS = sorted(p.name for p in CONFIG_DIR.glob("otelcol*.yaml"))
SSN = "123-45-6789"


def _tags(span: dict[str, Any]) -> dict[str, Any]:
    return {tag["key"]: tag["value"] for tag in span["tags"]}


def _parent(span: dict[str, Any]) -> str | None:
    refs = [ref["spanID"] for ref in span.get("references") or [] if ref["refType"] == "CHILD_OF"]
    return refs[0] if refs else None


def _otlp_env(collector: ManagedProcess) -> dict[str, str]:
    return {
        "OTEL_DECISIONS_EXPORTERS": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.ports['otlp_http']}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    }


def _flow_task_decision(trace: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    by_type: dict[str, list[dict[str, Any]]] = {}
    for span in trace["spans"]:
        tags = _tags(span)
        if span["operationName"].startswith(semconv.DECISION_SPAN_PREFIX):
            by_type.setdefault("decision", []).append(span)
        elif tags.get(semconv.PREFECT_RUN_TYPE) in ("flow", "task"):
            by_type.setdefault(tags[semconv.PREFECT_RUN_TYPE], []).append(span)
    names = [(s["operationName"], _tags(s).get(semconv.PREFECT_RUN_TYPE)) for s in trace["spans"]]
    assert len(by_type.get("flow", [])) == 1, f"expected one flow span, got {names}"
    assert len(by_type.get("task", [])) == 1, f"expected one task span, got {names}"
    assert len(by_type.get("decision", [])) == 1, f"expected one decision span, got {names}"
    return by_type["flow"][0], by_type["task"][0], by_type["decision"][0]


# --- 1. the collector accepts every config we ship ---------------------------------------------


@pytest.mark.parametrize("config", COLLECTOR_CONFIGS)
def test_collector_validates_config(binaries: Binaries, config: str) -> None:
    result = subprocess.run(  # noqa: S603
        [str(binaries.collector), "validate", "--config", str(CONFIG_DIR / config)],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, f"{config} rejected by otelcol-decisions validate:\n{result.stderr}"


def test_collector_validate_rejects_a_broken_config(binaries: Binaries, tmp_path: Path) -> None:
    """validate really checks component settings (else the test above proves nothing)."""
    text = (CONFIG_DIR / "otelcol.yaml").read_text()
    broken = tmp_path / "broken.yaml"
    broken.write_text(text.replace('delete_key(span.attributes, "decision.inputs")', "delete_key(span.attributes,"))
    result = subprocess.run(  # noqa: S603
        [str(binaries.collector), "validate", "--config", str(broken)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert "transform" in result.stderr


def test_jaeger_validates_its_config(binaries: Binaries) -> None:
    result = subprocess.run(  # noqa: S603
        [str(binaries.jaeger), "validate", "--config", str(CONFIG_DIR / "jaeger-e2e.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- 2. Prefect flow → collector → Jaeger ----------------------------------------------------------


def test_prefect_flow_reaches_jaeger_through_the_collector(
    jaeger: ManagedProcess, collector_factory: Any, tmp_path: Path
) -> None:
    collector = collector_factory("otelcol-e2e.yaml", jaeger=jaeger)
    # In-process free-text scrubbing off, so the collector's redaction processor (defence in
    # depth) is what must mask the SSN in the rationale.
    app = run_flow_app(
        tmp_path,
        {**_otlp_env(collector), "OTEL_DECISIONS_SCRUB_FREE_TEXT": "false", "E2E_RATIONALE": f"applicant SSN {SSN} verified"},
    )
    assert app["flushed"] is True

    trace = wait_for_jaeger_trace(jaeger, app["trace_id"], min_spans=3)
    flow_span, task_span, decision_span = _flow_task_decision(trace)

    # parentage: flow (root) -> task -> decision, all in one trace
    assert _parent(flow_span) is None
    assert _parent(task_span) == flow_span["spanID"]
    assert _parent(decision_span) == task_span["spanID"]
    assert decision_span["spanID"] == app["span_id"]
    assert {s["traceID"] for s in trace["spans"]} == {app["trace_id"]}

    # decision attributes arrive as typed Jaeger tags
    tags = _tags(decision_span)
    assert decision_span["operationName"] == "decision credit.approval"
    assert tags[semconv.DECISION_ID] == app["decision_id"]
    assert tags[semconv.DECISION_TYPE] == "credit.approval"
    assert tags[semconv.DECISION_OUTCOME] == "approve"
    assert tags[semconv.DECISION_CONFIDENCE] == pytest.approx(0.87)
    assert tags[semconv.DECISION_SCORE] == pytest.approx(0.91)
    assert json.loads(tags[semconv.DECISION_REASONS]) == ["income_to_debt", "payment_history"]
    assert tags[semconv.DECISION_MODEL_NAME] == "credit-gbm"
    assert tags[semconv.DECISION_MODEL_VERSION] == "3.1.0"
    assert tags[semconv.PREFECT_TASK_RUN_ID] == _tags(task_span)[semconv.PREFECT_RUN_ID]
    assert len(tags[semconv.DECISION_INPUTS_DIGEST]) >= 32
    service = trace["processes"][decision_span["processID"]]["serviceName"]
    assert service == "e2e-credit"

    # the collector's redaction masked the SSN that the application let through
    assert SSN not in json.dumps(trace)
    assert SSN not in tags[semconv.DECISION_RATIONALE]
    assert tags[semconv.DECISION_RATIONALE].startswith("applicant SSN ")

    # transform/jaeger drops the payloads from Jaeger's copy only: the other pipeline
    # (file exporter here, ClickHouse in production) still has decision.inputs.
    assert semconv.DECISION_INPUTS not in tags
    received = Path(collector.env["OTELCOL_FILE_EXPORT_PATH"])
    wait_until(lambda: received.exists() and app["span_id"] in received.read_text(), 10, what="file exporter output")
    assert f'"key":"{semconv.DECISION_INPUTS}"' in received.read_text()


# --- 3. the persistent queue -----------------------------------------------------------------------


def test_persistent_queue_delivers_after_jaeger_and_collector_restart(
    jaeger: ManagedProcess, collector_factory: Any, tmp_path: Path
) -> None:
    """Jaeger down while the flow runs; the collector is restarted too; the trace still arrives.

    The spans can only survive the collector restart in the file_storage-backed sending queue.
    """
    collector = collector_factory("otelcol-e2e.yaml", jaeger=jaeger)
    jaeger.stop()

    app = run_flow_app(tmp_path, _otlp_env(collector))
    received = Path(collector.env["OTELCOL_FILE_EXPORT_PATH"])
    wait_until(lambda: received.exists() and app["span_id"] in received.read_text(), 20, what="collector to receive the flow")
    # the Jaeger exporter holds the batch in its queue (it cannot send)
    queue_metric = 'otelcol_exporter_queue_size{'
    wait_until(lambda: collector_metric(collector, queue_metric) > 0, 20, what="a queued batch for Jaeger")

    assert collector.stop() == 0, collector.log_tail()
    storage = Path(collector.env["OTELCOL_STORAGE_DIR"])
    assert any(p.stat().st_size > 0 for p in storage.iterdir()), "no queue file on disk"

    collector.start()
    jaeger.start()  # a fresh Jaeger (in-memory storage): whatever it shows came from the queue
    trace = wait_for_jaeger_trace(jaeger, app["trace_id"], min_spans=3, timeout=60)
    _, task_span, decision_span = _flow_task_decision(trace)
    assert _parent(decision_span) == task_span["spanID"]
    assert _tags(decision_span)[semconv.DECISION_ID] == app["decision_id"]
    wait_until(lambda: collector_metric(collector, queue_metric) == 0, 20, what="the queue to drain")


# --- 4. what Jaeger serves at its UI address --------------------------------------------------------


def test_jaeger_ui_address_serves_placeholder_page_and_api(jaeger: ManagedProcess, record_property: Any) -> None:
    base = jaeger_query_url(jaeger)
    status, body, headers = http_get(f"{base}/")
    page = body.decode(errors="replace")
    record_property("jaeger_ui_status", status)
    record_property("jaeger_ui_title", page.split("<title>")[1].split("</title>")[0] if "<title>" in page else "")
    assert status == 200
    assert "text/html" in headers.get("Content-Type", "")
    # Built from the Go module, the binary embeds no UI assets (they come from the
    # jaeger-ui npm build in Jaeger's release pipeline): it serves its placeholder page.
    # The jaegertracing/jaeger image serves the real UI here.
    assert "This is not the Jaeger UI you are looking for" in page
    assert "JAEGER_VERSION" in page  # the query service still injects its UI config
    # SPA routes fall back to the same page; the JSON API the UI would call works.
    assert http_get(f"{base}/search")[0] == 200
    status, body, _ = http_get(f"{base}/api/services")
    assert status == 200 and "data" in json.loads(body)


# --- 5. export-trace: ClickHouse → OTLP-JSON → Jaeger ------------------------------------------------


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("otel-decisions")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from otel_decisions.cli import main; main()"]


def _export(trace_id: str, fmt: str, dsn: str, out: Path) -> dict[str, Any]:
    # a separate process: chDB allows one engine per process, and the test process stays chDB-free
    result = subprocess.run(  # noqa: S603
        [*_cli(), "export-trace", trace_id, "--format", fmt, "--dsn", dsn, "--output", str(out)],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


def test_export_trace_otlp_json_loads_into_jaeger_unchanged(jaeger: ManagedProcess, tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'chdb'}"
    app = run_flow_app(tmp_path, {"OTEL_DECISIONS_EXPORTERS": "clickhouse", "OTEL_DECISIONS_DSN": dsn})
    assert app["flushed"] is True

    otlp = _export(app["trace_id"], "otlp-json", dsn, tmp_path / "trace.otlp.json")
    expected = _export(app["trace_id"], "jaeger-json", dsn, tmp_path / "trace.jaeger.json")["data"][0]
    assert len(expected["spans"]) >= 3

    status, body = http_post_json(f"http://127.0.0.1:{jaeger.ports['otlp_http']}/v1/traces", otlp)
    assert status == 200, body
    got = wait_for_jaeger_trace(jaeger, app["trace_id"], min_spans=len(expected["spans"]))

    def shape(trace: dict[str, Any]) -> dict[str, tuple[str, str | None]]:
        return {s["spanID"]: (s["operationName"], _parent(s)) for s in trace["spans"]}

    assert shape(got) == shape(expected)
    _, _, decision_span = _flow_task_decision(got)
    assert decision_span["spanID"] == app["span_id"]
    want = {s["spanID"]: s for s in expected["spans"]}[decision_span["spanID"]]
    decision_tags = {k: v for k, v in _tags(decision_span).items() if k.startswith("decision.")}
    assert decision_tags == {k: v for k, v in _tags(want).items() if k.startswith("decision.")}
    assert decision_tags[semconv.DECISION_ID] == app["decision_id"]
    assert decision_tags[semconv.DECISION_CONFIDENCE] == pytest.approx(0.87)  # typed again, not "0.87"
    # every span's full tag set and timing survive too
    for span in got["spans"]:
        mine = {s["spanID"]: s for s in expected["spans"]}[span["spanID"]]
        assert _tags(span) == _tags(mine), span["operationName"]
        assert (span["startTime"], span["duration"]) == (mine["startTime"], mine["duration"])
    assert jaeger_trace(jaeger, "0" * 31 + "1") is None


def test_export_trace_errors_say_what_to_fix(tmp_path: Path) -> None:
    dsn = f"chdb://{tmp_path / 'empty'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([*_cli(), "export-trace", *args], capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
        done.stderr = " ".join(done.stderr.split())  # rich wraps long messages
        return done

    bad_id = run("not-a-trace", "--dsn", dsn)
    assert bad_id.returncode == 2 and "32 hexadecimal" in bad_id.stderr
    bad_format = run("0" * 32, "--format", "zipkin", "--dsn", dsn)
    assert bad_format.returncode == 2 and "otlp-json" in bad_format.stderr
    no_store = run("0" * 32, "--dsn", dsn)
    assert no_store.returncode == 3 and "no decision store here" in no_store.stderr and "schema apply" in no_store.stderr
