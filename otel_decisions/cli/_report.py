"""``otel-decisions report``: the self-contained HTML evidence report for one's own data.

Example::

    $ otel-decisions report --since 2026-01-01 --until 2026-04-01 --out q1.html
    $ otel-decisions report --flow-run 0f5c2d6e-1b7a-4c59-9a0e-6f1d2b3c4d5e --out run.html
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from otel_decisions.cli._common import err_console, handle_errors
from otel_decisions.cli._storage import DSN_HELP, _client, _when


def register(app: typer.Typer) -> None:
    """Add ``report`` to *app*."""

    @app.command("report")
    @handle_errors
    def report_command(
        since: Annotated[
            Optional[str], typer.Option("--since", help="Start of the period (decision time, UTC), inclusive.")
        ] = None,
        until: Annotated[
            Optional[str], typer.Option("--until", help="End of the period (decision time, UTC), exclusive.")
        ] = None,
        flow_run: Annotated[
            Optional[str],
            typer.Option("--flow-run", help="Only this Prefect flow run's decisions (and the reviews of them)."),
        ] = None,
        out: Annotated[Path, typer.Option("--out", "-o", help="The HTML file to write.")] = Path(
            "otel-decisions-report.html"
        ),
        title: Annotated[Optional[str], typer.Option("--title", help="The report's heading.")] = None,
        dsn: Annotated[Optional[str], typer.Option("--dsn", help=DSN_HELP)] = None,
    ) -> None:
        """Write the HTML evidence report (summary, charts, reviewers, models, adverse decisions with their
        reasons; a flow run's audit trail with --flow-run) for any period or flow run. The read is logged to
        access_log."""
        from otel_decisions.oversight import check_flow_run_id, check_period, write_evidence_report
        from otel_decisions.settings import load_settings
        from otel_decisions.store.client import chdb_path_of, redact_dsn

        start, end = _when(since, "--since"), _when(until, "--until")
        check_period(start, end)  # before the store is opened
        run_id = check_flow_run_id(flow_run, "--flow-run")
        resolved = dsn or load_settings().resolved_dsn
        client = _client(dsn, "reader")
        sink = _client(dsn, "writer") if chdb_path_of(resolved) else None  # the embedded reader is read-only
        try:
            data = write_evidence_report(
                client,
                out,
                title=title,
                start=start,
                end=end,
                flow_run_id=run_id,
                database=redact_dsn(resolved),
                sink=sink,
            )
        finally:
            client.close()
            if sink is not None:
                sink.close()
        decisions = int(data.summary.get("decisions") or 0)
        scope = f"flow run {run_id}" if run_id else "the period" if (start or end) else "all recorded decisions"
        if run_id and not decisions:
            err_console.print(f"[yellow]warning:[/] no decisions are recorded for flow run {run_id}")
        err_console.print(f"wrote the evidence report for {scope} ({decisions} decisions) to {out.resolve()}")
