"""``otel-decisions verify``: check stored decisions against their hash chains."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from otel_decisions.cli._common import console, handle_errors


def register(app: typer.Typer) -> None:
    """Add the ``verify`` command to *app*."""

    @app.command("verify")
    @handle_errors
    def verify(
        dsn: Annotated[
            Optional[str],
            typer.Option(help="ClickHouse DSN (default: the embedded chDB database).", envvar="OTEL_DECISIONS_DSN"),
        ] = None,
    ) -> None:
        """Recompute every stored decision's chain hash; exit 1 if a record was altered or deleted."""
        from rich.table import Table

        from otel_decisions.privacy import existing_hmac_key
        from otel_decisions.settings import load_settings
        from otel_decisions.store.client import get_client
        from otel_decisions.verify import verify as run_verify

        report = run_verify(get_client(dsn, role="reader"), key=existing_hmac_key(load_settings()))
        unsigned = (
            f", {report.unsigned_checkpoints} with another key's signature (unchecked)"
            if report.unsigned_checkpoints
            else ""
        )
        if report.ok:
            console.print(
                f"[green]ok[/]: {report.checked} records in {report.chains} chains verified, "
                f"{report.checkpoints} checkpoints{unsigned}"
                + (
                    f"; {report.removed} records removed by {report.operations} recorded disposals/erasures"
                    + (
                        f" ({report.unsigned_operations} unsigned or another key's)"
                        if report.unsigned_operations
                        else ""
                    )
                    if report.operations
                    else ""
                )
            )
            return
        table = Table(title=f"{len(report.problems)} integrity problems in {report.checked} records")
        for column in ("kind", "chain", "seq", "record", "detail"):
            table.add_column(column)
        for p in report.problems:
            table.add_row(p.kind, p.chain, str(p.seq), p.record_id, p.detail)
        console.print(table)
        raise typer.Exit(code=1)
