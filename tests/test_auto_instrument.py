"""`opentelemetry-instrument python flow.py`: zero code changes, decisions still recorded and protected."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

APP = Path(__file__).parent / "apps" / "uninstrumented_flow.py"


def test_opentelemetry_instrument_runs_configure_and_the_instrumentor(tmp_path):
    env = dict(os.environ)
    env.update({
        "OTEL_DECISIONS_EXPORTERS": "console",
        "OTEL_DECISIONS_DURABLE": "false",
        "OTEL_DECISIONS_DATA_DIR": str(tmp_path),
        "OTEL_DECISIONS_HMAC_KEY": "auto-instrument-test-key-0123",
        "OTEL_SERVICE_NAME": "screening-app",
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
    })
    instrument = Path(sys.executable).parent / "opentelemetry-instrument"
    result = subprocess.run([str(instrument), sys.executable, str(APP)], env=env, capture_output=True, text=True,
                            timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "RESULT [{'label': 'legit', 'probability': 0.88}, {'label': 'fraud', 'probability': 0.93}]" in result.stdout
    spans = []
    decoder = json.JSONDecoder()
    text = result.stdout
    index = text.find("{")
    while index != -1:
        try:
            obj, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        if isinstance(obj, dict) and "name" in obj and "attributes" in obj:
            spans.append(obj)
        index = text.find("{", end)
    decisions = [s for s in spans if s["name"] == "decision screen"]
    assert sorted(d["attributes"]["decision.outcome"] for d in decisions) == ["fraud", "legit"]
    assert all(d["resource"]["attributes"]["service.name"] == "screening-app" for d in decisions)
    assert "4111 1111 1111 1111" not in result.stdout
    inputs = json.loads(decisions[0]["attributes"]["decision.inputs"])
    assert inputs["transaction"]["card_number"] == "[REDACTED]"
