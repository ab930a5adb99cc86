"""``otel-decisions serve``: ClickHouse's HTTP interface over the embedded database.

Example::

    $ otel-decisions serve --dsn chdb:///var/lib/otel-decisions/chdb --port 8123
    $ OTEL_DECISIONS_DSN=http://127.0.0.1:8123 otel-decisions query list   # another process
"""

from __future__ import annotations

from typing import Annotated

import typer

from otel_decisions.cli._common import console, handle_errors

SERVE_HELP = (
    "Serve the embedded database over ClickHouse's HTTP interface so several processes "
    "(flows, the CLI, a collector) share one database through an http:// DSN. "
    "For one machine: development, tests and small sites. Production and scale-out use "
    "ClickHouse server or a cluster. Binds to loopback unless --allow-remote is given with "
    "credentials. SIGTERM/SIGINT stop it gracefully: in-flight inserts finish, the engine closes."
)


@handle_errors
def serve_command(
    dsn: Annotated[
        str | None,
        typer.Option(help="Embedded database to own, chdb:///path (default: OTEL_DECISIONS_DSN or data_dir/chdb)."),
    ] = None,
    host: Annotated[
        str, typer.Option(help="Address to bind; anything but loopback needs --allow-remote.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (ClickHouse's HTTP port is 8123; 0 picks a free one).")] = 8123,
    user: Annotated[
        str | None, typer.Option(envvar="OTEL_DECISIONS_SERVE_USER", help="User clients must send (basic auth).")
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="OTEL_DECISIONS_SERVE_PASSWORD", help="Password clients must send (basic auth).", show_default=False
        ),
    ] = None,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (requires --user/--password).")
    ] = False,
) -> None:
    from otel_decisions.serve import serve
    from otel_decisions.settings import load_settings

    resolved = dsn or load_settings().resolved_dsn
    serve(
        resolved,
        host,
        port,
        user=user,
        password=password,
        allow_remote=allow_remote,
        ready=lambda s: console.print(
            f"serving ClickHouse HTTP on http://{s.host}:{s.port} over {s.path} (Ctrl-C or SIGTERM to stop)",
            highlight=False,
        ),
    )


def register(app: typer.Typer) -> None:
    """Add ``serve`` to *app*."""
    app.command("serve", help=SERVE_HELP)(serve_command)
