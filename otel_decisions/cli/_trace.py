"""``otel-decisions export-trace``: one trace from ClickHouse as a file Jaeger can load.

Example::

    $ otel-decisions export-trace 4bf92f3577b34da6a3ce929d0e0e4736 --format otlp-json
    $ curl -H 'Content-Type: application/json' --data @4bf9...4736.otlp.json http://jaeger:4318/v1/traces
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from otel_decisions.cli._common import err_console, handle_errors


def register(app: typer.Typer) -> None:
    """Add ``export-trace`` to *app*."""

    @app.command("export-trace")
    @handle_errors
    def export_trace_command(
        trace_id: Annotated[str, typer.Argument(help="Trace id, 32 hex characters.")],
        fmt: Annotated[
            str,
            typer.Option(
                "--format",
                "-f",
                help="otlp-json (OTLP/JSON ExportTraceServiceRequest: POST to an OTLP/HTTP /v1/traces, e.g. Jaeger's) "
                "or jaeger-json (Jaeger UI JSON, for its JSON file upload).",
            ),
        ] = "otlp-json",
        dsn: Annotated[
            str | None,
            typer.Option(
                "--dsn", help="ClickHouse DSN (chdb:///path or http(s)://...); default: OTEL_DECISIONS_DSN / data dir."
            ),
        ] = None,
        output: Annotated[
            str | None,
            typer.Option(
                "--output", "-o", help="File to write; '-' for stdout. Default: TRACE_ID.otlp.json / .jaeger.json."
            ),
        ] = None,
    ) -> None:
        """Write one trace read from ClickHouse otel_traces as OTLP-JSON or Jaeger JSON."""
        from otel_decisions.output.trace_file import export_trace

        document = export_trace(trace_id, fmt=fmt, dsn=dsn)  # type: ignore[arg-type]
        _log_export(dsn, trace_id, fmt, document)
        text = json.dumps(document, ensure_ascii=False, indent=1)
        if output == "-":
            typer.echo(text)
            return
        suffix = "otlp.json" if fmt == "otlp-json" else "jaeger.json"
        path = Path(output) if output else Path(f"{trace_id.strip().lower()}.{suffix}")
        path.write_text(text + "\n", encoding="utf-8")
        count = (
            sum(len(s["spans"]) for r in document["resourceSpans"] for s in r["scopeSpans"])
            if fmt == "otlp-json"
            else len(document["data"][0]["spans"])
        )
        err_console.print(f"wrote {count} spans of trace {trace_id} to {path} ({fmt})")


def _decision_ids(node: Any) -> list[str]:
    """Every ``decision.id`` attribute value in an OTLP-JSON or Jaeger JSON document."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("key") == "decision.id":
            value = node.get("value")
            found.append(str(value.get("stringValue", "") if isinstance(value, dict) else value))
        for child in node.values():
            found += _decision_ids(child)
    elif isinstance(node, list):
        for child in node:
            found += _decision_ids(child)
    return found


def _log_export(dsn: str | None, trace_id: str, fmt: str, document: Any) -> None:
    """An export is a read of decision data: logged to access_log (HIPAA 164.312(b))."""
    from otel_decisions.cli._storage import _client, log_read

    decisions = sorted(set(_decision_ids(document)))
    client = _client(dsn, "reader")
    try:
        log_read(
            dsn,
            client,
            command="export-trace",
            parameters={"trace_id": trace_id},
            decision_ids=decisions,
            row_count=len(decisions),
            export_format=fmt,
        )
    finally:
        client.close()
