"""``otel-decisions reconcile``: every task run Prefect reports, accounted for in the store.

Example::

    $ otel-decisions reconcile --flow-run 6a0c2f0e-...      # exit 1 if any task run is unaccounted
    $ otel-decisions reconcile --since 2026-12-01T00:00:00Z --format json
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from otel_decisions.cli._common import console, err_console, handle_errors
from otel_decisions.output.tables import FORMATS, render_rows


def register(app: typer.Typer) -> None:
    """Add the ``reconcile`` command to *app*."""

    @app.command("reconcile")
    @handle_errors
    def reconcile_command(
        flow_run: Annotated[
            Optional[str], typer.Option("--flow-run", help="Account for this flow run's task runs.")
        ] = None,
        since: Annotated[
            Optional[str], typer.Option(help="Account for task runs started since (ISO time, UTC).")
        ] = None,
        dsn: Annotated[
            Optional[str], typer.Option(help="Decision store DSN (default: settings).", envvar="OTEL_DECISIONS_DSN")
        ] = None,
        fmt: Annotated[str, typer.Option("--format", "-f", help=f"One of {', '.join(FORMATS)}.")] = "table",
    ) -> None:
        """Classify each finished task run from Prefect's API: decision(s) recorded, instrumented with no
        decision, or unaccounted (no trace in the store). Exits 1 when any is unaccounted."""
        from otel_decisions.catalogue import parse_datetime
        from otel_decisions.errors import FieldError, StoreNotFoundError
        from otel_decisions.reconcile import reconcile
        from otel_decisions.settings import load_settings
        from otel_decisions.store.client import get_client

        if fmt not in FORMATS:
            raise FieldError("--format", f"{fmt!r} is not one of {', '.join(FORMATS)}")
        try:
            start = parse_datetime(since) if since else None
        except ValueError:
            raise FieldError("--since", f"{since!r}: use an ISO date or time, e.g. 2026-12-01T00:00:00Z") from None
        try:
            client = get_client(dsn, load_settings() if dsn is None else None, role="reader")
        except StoreNotFoundError as exc:  # nothing was ever recorded there: every task run is unaccounted
            err_console.print(f"note: {exc}; every task run is unaccounted for", highlight=False)
            client = None
        try:
            report = reconcile(client, flow_run_id=flow_run, since=start)
        finally:
            if client is not None:
                client.close()
        columns = ["task_run_id", "task_name", "flow_run_id", "state", "decisions", "classification"]
        rows = [
            (r.task_run_id, r.task_name, r.flow_run_id, r.state, r.decisions, r.classification) for r in report.runs
        ]
        rendered = render_rows(columns, rows, fmt, title="Task runs accounted for")
        if isinstance(rendered, str):
            typer.echo(rendered)
        else:
            console.print(rendered)
        summary = {c: len(report.of(c)) for c in ("recorded", "instrumented", "unaccounted")}
        err_console.print(
            json.dumps(summary)
            if fmt == "json"
            else f"{summary['recorded']} recorded, {summary['instrumented']} instrumented without a decision, "
            f"{summary['unaccounted']} unaccounted",
            highlight=False,
        )
        if report.unaccounted:
            raise typer.Exit(code=1)
