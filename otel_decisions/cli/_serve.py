"""``otel-decisions serve``: own the embedded database in the foreground, served by ClickHouse's own
HTTP and native TCP listeners (for a small site, a shared dev box, a collector).

Without it, the first process that needs the embedded database starts an owner in the
background; ``serve`` is the same owner, in the foreground, on the ports you choose.

Example::

    $ otel-decisions serve --http-port 8123 --tcp-port 9000
    $ otel-decisions query run overrides        # any other process: a client of it
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from otel_decisions.cli._common import console, handle_errors
from otel_decisions.errors import FieldError, OtelDecisionsError, StoreError

SERVE_HELP = (
    "Own and serve the embedded database in the foreground: ClickHouse's own HTTP and native TCP "
    "listeners on loopback, with the engine's users (otel_admin, otel_writer, otel_reader; passwords "
    "generated into the data directory unless set by OTEL_DECISIONS_EMBEDDED_*_PASSWORD). Every other "
    "process, a collector included, is a client of it. --allow-remote binds another address, and then "
    "every password must be set. SIGTERM / SIGINT stop it cleanly."
)


@handle_errors
def serve_command(
    dsn: Annotated[
        str | None,
        typer.Option(help="Embedded database to own, chdb:///path (default: OTEL_DECISIONS_DSN or data_dir/chdb)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs --allow-remote.")] = (
        "127.0.0.1"
    ),
    http_port: Annotated[int, typer.Option(help="ClickHouse HTTP port (0 picks a free one).")] = 8123,
    tcp_port: Annotated[int, typer.Option(help="ClickHouse native TCP port (0 picks a free one).")] = 9000,
    allow_remote: Annotated[
        bool, typer.Option("--allow-remote", help="Allow a non-loopback --host (every password must be set).")
    ] = False,
) -> None:
    from otel_decisions.settings import load_settings
    from otel_decisions.store import embedded
    from otel_decisions.store.client import SESSION_SETTINGS, chdb_database_of, chdb_path_of, embedded_passwords
    from otel_decisions.store.schema import apply_migrations

    settings = load_settings()
    resolved = dsn or settings.resolved_dsn
    path = chdb_path_of(resolved)
    if path is None:
        raise FieldError("--dsn", f"{resolved!r} is not an embedded database; serve owns a chdb:///path directory")
    if host not in ("127.0.0.1", "::1", "localhost") and not allow_remote:
        raise FieldError(
            "--host", f"{host} is not loopback: add --allow-remote (and set every password) to listen there"
        )
    passwords = embedded_passwords(settings)
    database = chdb_database_of(resolved)
    running = embedded.read_endpoint(Path(path))
    if running is not None:
        raise StoreError(
            f"{path} is already served by process {running.pid} (http {running.http_port}, tcp {running.tcp_port}); "
            "stop that process first, or use it: every process is a client of the running owner"
        )

    def ready(endpoint: embedded.Endpoint) -> None:
        # the collector writes as otel_writer: the schema must exist before it connects
        client = endpoint.client("admin", settings=SESSION_SETTINGS)  # not yet published: its own endpoint
        try:
            client.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
            apply_migrations(client, database=database)
        finally:
            client.close()
        console.print(
            f"serving {path}: http://{endpoint.host}:{endpoint.http_port} and tcp://{endpoint.host}:{endpoint.tcp_port} "
            f"(users {', '.join(user for user, _ in endpoint.users.values())}; credentials in "
            f"{Path(path) / embedded.CREDENTIALS_FILE}). Ctrl-C or SIGTERM stops it.",
            highlight=False,
        )

    try:
        code = embedded.run_owner(
            Path(path), host=host, http_port=http_port, tcp_port=tcp_port, passwords=passwords, ready=ready
        )
    except embedded.ConfigError as exc:
        raise FieldError(exc.field, exc.problem) from None
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if code == embedded.EXIT_ALREADY_OWNED:
        raise StoreError(
            f"{path} is owned by another process that started at the same moment; use it, or stop it first"
        )
    if code != 0:
        raise OtelDecisionsError(
            f"the embedded database at {path} stopped with status {code}; see {Path(path) / embedded.LOG_FILE}"
        )


def register(app: typer.Typer) -> None:
    """Add the ``serve`` command to *app*."""
    app.command("serve", help=SERVE_HELP)(serve_command)
