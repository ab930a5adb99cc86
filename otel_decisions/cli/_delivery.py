"""``otel-decisions delivery status|drain``: what the durable spool holds, and shipping it.

Example::

    $ otel-decisions delivery status
    $ otel-decisions delivery drain --timeout 120
"""

from __future__ import annotations

import json

import typer
from rich.table import Table

from otel_decisions.cli._common import console, handle_errors
from otel_decisions.delivery import DeliveryStatus, delivery_status, drain
from otel_decisions.sdk import build_exporters
from otel_decisions.settings import load_settings

delivery_app = typer.Typer(help="Durable delivery: spool status and draining.", no_args_is_help=True)


def _print_status(status: DeliveryStatus, as_json: bool) -> None:
    if as_json:
        console.print_json(json.dumps(status.as_dict()))
        return
    table = Table(title=f"delivery spool {status.spool_dir}")
    table.add_column("count")
    table.add_column("value", justify="right")
    for key in (
        "captured",
        "spooled",
        "durable",
        "delivered",
        "pending",
        "retried",
        "rejected",
        "quarantined_regions",
        "quarantined_bytes",
        "spool_bytes",
        "quota_bytes",
    ):
        table.add_row(key, str(getattr(status, key)))
    table.add_row("drainer active", "yes" if status.drainer_active else "no")
    console.print(table)
    for directory in status.directories:
        state = "running" if directory.alive else "exited"
        console.print(
            f"  {directory.name} ({state}): captured {directory.captured}, delivered {directory.delivered}, "
            f"pending {directory.pending}"
        )
        for problem in directory.problems:
            console.print(f"    [yellow]{problem}[/]")
    for path in status.quarantine_files:
        console.print(f"  [red]quarantined:[/] {path}")


@delivery_app.command("status")
@handle_errors
def status_command(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Counts across every process that used the spool: captured, delivered, pending, quarantined."""
    _print_status(delivery_status(load_settings()), as_json)


@delivery_app.command("drain")
@handle_errors
def drain_command(
    timeout: float = typer.Option(300.0, "--timeout", help="Give up (exit 2, records kept) after this many seconds."),
    as_json: bool = typer.Option(False, "--json", help="Print the status after draining as JSON."),
) -> None:
    """Deliver everything pending in the spool (e.g. after a crash) to the configured exporters."""
    settings = load_settings()
    _print_status(drain(settings, exporters=build_exporters(settings), timeout_s=timeout, own_exporters=True), as_json)


def register(app: typer.Typer) -> None:
    """Add the ``delivery`` group to *app*."""
    app.add_typer(delivery_app, name="delivery")
