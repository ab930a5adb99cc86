"""No fixture identifier leaves a flow in clear, whichever way the tracer provider was set up.

``tests/apps/privacy_flow.py`` runs real Prefect flows over synthetic people: nested dicts and lists,
pydantic and dataclass returns, templated task and flow run names, a failing task with retries and
personal data in its exception, explicit ``record_decision`` with nested inputs, and identifiers
that only appear in free text. Each identifier is looked for in the encoded OTLP payload of every
span an application processor saw and in every stored ``otel_traces`` row.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "tests" / "apps" / "privacy_flow.py"
sys.path.insert(0, str(APP.parent))
from privacy_flow import IDENTIFIERS, PEOPLE  # noqa: E402

pytestmark = pytest.mark.slow


def _run(tmp_path: Path, mode: str) -> tuple[bytes, list[dict], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PREFECT_"))}
    env.pop("PYTHONPATH", None)
    env.update({
        "OTEL_DECISIONS_DATA_DIR": str(tmp_path / "data"),
        "OTEL_DECISIONS_EXPORTERS": "clickhouse",
        "OTEL_DECISIONS_HMAC_KEY": "privacy-matrix-key-0123456789",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "CRITICAL",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    })
    launcher = [str(Path(sys.executable).parent / "opentelemetry-instrument")] if mode == "auto" else []
    out = tmp_path / "spans.bin"
    ran = subprocess.run([*launcher, sys.executable, str(APP), mode, str(out)], env=env, capture_output=True,
                         text=True, timeout=600, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-4000:]
    from otel_decisions.store.client import get_client

    client = get_client(f"chdb://{tmp_path / 'data' / 'chdb'}", role="reader")
    try:
        columns = [c for (c,) in client.query("SELECT name FROM system.columns WHERE table = 'otel_traces' "
                                               "AND database = currentDatabase()").result_rows]
        rows = [dict(zip(columns, row, strict=True)) for row in client.query("SELECT * FROM otel_traces").result_rows]
    finally:
        client.close()
    return out.read_bytes(), [json.loads(s) for s in [json.dumps(r, default=str) for r in rows]], \
        out.with_suffix(".json").read_text()


@pytest.mark.parametrize("mode", ["configure", "own-provider", "auto"])
def test_no_identifier_in_any_exported_span_or_stored_row(tmp_path: Path, mode: str) -> None:
    payload, rows, spans_json = _run(tmp_path, mode)
    stored = json.dumps(rows)
    spans = json.loads(spans_json)
    names = {s["name"] for s in spans}
    # the matrix ran: Prefect's run spans (templated names), every decision, the failed retried task
    assert sum(n.startswith("decision ") for n in names) >= 4 and "kyc-[REDACTED]" in names
    assert "onboard-[REDACTED]" in names and "verify-[REDACTED]" in names
    assert any(e["name"] == "exception" for s in spans for e in s["events"])
    assert any(s["name"] == "decision.review" and s["links"] for s in spans)
    assert len([r for r in rows if r["SpanName"].startswith("decision ")]) == 4 * len(PEOPLE)
    leaks = [(identifier, where) for identifier in IDENTIFIERS
             for where, text in (("OTLP payload", payload.decode("utf-8", "replace")), ("otel_traces", stored))
             if identifier in text]
    assert not leaks, leaks
    # what is not personal passes: amounts, outcomes, ids
    assert "52000" in stored and "refer" in stored and "APP-77120" not in stored  # the subject id is a pseudonym
