"""``otel-decisions demo``: the example flows end to end on the embedded database (or a DSN)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from otel_decisions.cli._common import console, handle_errors


def register(app: typer.Typer) -> None:
    """Add the ``demo`` command to *app*."""

    @app.command("demo")
    @handle_errors
    def demo(
        applicants: Annotated[
            int, typer.Option(min=1, max=100_000, help="Synthetic credit applicants to decide.")
        ] = 200,
        dsn: Annotated[
            Optional[str],
            typer.Option(help="ClickHouse DSN (default: the embedded chDB database).", envvar="OTEL_DECISIONS_DSN"),
        ] = None,
        report: Annotated[Path, typer.Option(help="Where to write the HTML evidence report.")] = Path(
            "otel-decisions-report.html"
        ),
        seed: Annotated[int, typer.Option(help="Random seed of the synthetic data.")] = 7,
        exporter: Annotated[
            str,
            typer.Option(
                help="clickhouse: write to --dsn directly; otlp: send to the collector at OTEL_EXPORTER_OTLP_ENDPOINT."
            ),
        ] = "clickhouse",
    ) -> None:
        """Run the example flows (credit, clinical triage, an uninstrumented flow), then print a compliance summary and write an HTML report."""
        from otel_decisions.demo import run_demo

        run_demo(applicants=applicants, dsn=dsn, report_path=report, seed=seed, exporter=exporter, console=console)
