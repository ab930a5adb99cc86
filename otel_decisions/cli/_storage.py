"""Storage commands: ``query``, ``schema``, ``db`` and ``models`` groups.

Thin layer over :mod:`otel_decisions.catalogue`, :mod:`otel_decisions.store` and
:mod:`otel_decisions.output.tables`: parse arguments, call one function, print. Errors are
:class:`OtelDecisionsError` → its message and exit code.

Example::

    $ otel-decisions schema apply
    $ otel-decisions query run adverse_action_reasons --param start=2026-01-01 --format csv
    $ otel-decisions models approve credit-scorer 2.0 --by model-risk
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Optional

import typer
from rich.table import Table

from otel_decisions.cli._common import console, handle_errors
from otel_decisions.errors import FieldError, OtelDecisionsError
from otel_decisions.output.tables import FORMATS, cell_text, jsonable, render_rows
from otel_decisions.settings import load_settings
from otel_decisions.store.client import Role, database_of

DSN_HELP = "ClickHouse DSN (chdb:///path or http(s)://user:pass@host:port/db); default: settings (OTEL_DECISIONS_DSN)."

query_app = typer.Typer(help="The compliance query catalogue (queries/*.sql).", no_args_is_help=True)
schema_app = typer.Typer(help="Create and migrate the decision store.", no_args_is_help=True)
db_app = typer.Typer(help="Inspect the decision store.", no_args_is_help=True)
models_app = typer.Typer(help="Maintain the model approval register (model_approvals).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Add the storage command groups to *app*."""
    app.add_typer(query_app, name="query")
    app.add_typer(schema_app, name="schema")
    app.add_typer(db_app, name="db")
    app.add_typer(models_app, name="models")


def _client(dsn: str | None, role: Role) -> Any:
    from otel_decisions.settings import load_settings
    from otel_decisions.store.client import get_client

    return get_client(dsn, load_settings() if dsn is None else None, role=role)


def log_read(dsn: str | None, client: Any, **entry: Any) -> None:
    """Write an access_log row for a read made through *client* (the embedded reader is read-only: the
    writer role writes the row there; on a server the reader role may insert into access_log)."""
    from otel_decisions.lifecycle import log_access
    from otel_decisions.store.client import chdb_path_of

    resolved = dsn or load_settings().resolved_dsn
    sink = _client(dsn, "writer") if chdb_path_of(resolved) else None
    try:
        log_access(client, sink=sink, **entry)
    finally:
        if sink is not None:
            sink.close()


def _print(rendered: str | Table) -> None:
    if isinstance(rendered, str):
        typer.echo(rendered)
    else:
        console.print(rendered)


def _parse_params(pairs: list[str]) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs:
        if "=" not in pair:
            raise OtelDecisionsError(f"--param {pair!r}: use NAME=VALUE")
        key, value = pair.split("=", 1)
        values[key.strip()] = value
    return values


# --- query ------------------------------------------------------------------------------------------
@query_app.command("list")
@handle_errors
def query_list(fmt: str = typer.Option("table", "--format", "-f", help=f"One of {', '.join(FORMATS)}.")) -> None:
    """List every query: name, title, regulations."""
    from otel_decisions.catalogue import load_catalogue

    _check_format(fmt)
    rows = [(q.name, q.title, "; ".join(q.regulations)) for q in load_catalogue().values()]
    _print(render_rows(["name", "title", "regulations"], rows, fmt, title="Compliance queries"))


@query_app.command("show")
@handle_errors
def query_show(name: str = typer.Argument(..., help="Query name (see `query list`).")) -> None:
    """Show a query's description, regulations, parameters and SQL."""
    from otel_decisions.catalogue import get_query

    query = get_query(name)
    console.print(f"[bold]{query.name}[/] — {query.title}\n")
    console.print(query.description + "\n")
    console.print(f"[bold]Regulations:[/] {'; '.join(query.regulations)}\n")
    if query.params:
        rows = [(p.name, p.type, "(required)" if p.required else p.default, p.description) for p in query.params]
        console.print(render_rows(["parameter", "type", "default", "description"], rows, "table"))
    typer.echo(query.sql)


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise OtelDecisionsError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")


@query_app.command("run")
@handle_errors
def query_run(
    name: str = typer.Argument(..., help="Query name (see `query list`)."),
    param: list[str] = typer.Option([], "--param", "-p", help="NAME=VALUE; repeat for several."),
    fmt: str = typer.Option("table", "--format", "-f", help=f"One of {', '.join(FORMATS)}."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
) -> None:
    """Run a catalogue query with typed parameters and print the rows."""
    from otel_decisions.catalogue import get_query, run_query

    _check_format(fmt)
    query = get_query(name)
    values = _parse_params(param)
    query.bind(values)  # validate before opening the database
    client = _client(dsn, "reader")
    try:
        result = run_query(client, query, values)
        log_read(
            dsn,
            client,
            command="query run",
            query_name=query.name,
            parameters=result.parameters,
            columns=result.columns,
            rows=result.rows,
            export_format="" if fmt == "table" else fmt,
        )
    finally:
        client.close()
    _print(render_rows(result.columns, result.rows, fmt, title=query.title))


# --- schema -----------------------------------------------------------------------------------------
@schema_app.command("apply")
@handle_errors
def schema_apply(
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
    cluster: Optional[str] = typer.Option(None, "--cluster", help="Render Replicated engines and ON CLUSTER NAME."),
    traces_ttl_days: Optional[int] = typer.Option(
        None,
        "--traces-ttl-days",
        help="Set a TTL on otel_traces that deletes non-decision spans after N days (0 removes it). "
        "Decision and review spans are never deleted by it.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the DDL instead of running it."),
    roles: bool = typer.Option(
        False,
        "--roles",
        help="Also create the writer, reader and admin roles (a ClickHouse server; the embedded "
        "database's owner has them built in).",
    ),
) -> None:
    """Apply pending migrations (idempotent)."""
    from otel_decisions.store import schema

    if dry_run:
        from urllib.parse import urlparse

        path = urlparse(dsn).path.strip("/") if dsn and not dsn.startswith("chdb") else ""
        database = path.split("/")[0] or "default"
        for statement in schema.render_ddl(database, cluster) + (schema.role_ddl(database, cluster) if roles else []):
            typer.echo(statement.rstrip() + ";\n")
        if traces_ttl_days is not None:
            typer.echo(schema.traces_ttl_sql(traces_ttl_days, database, cluster) + ";")
        return
    client = _client(dsn, "admin")
    try:
        ran = schema.apply_migrations(client, cluster=cluster)
        for migration in ran:
            console.print(f"applied migration {migration.version}: {migration.name}")
        if not ran:
            console.print("schema up to date")
        if roles:
            if (dsn or load_settings().resolved_dsn).startswith("chdb:"):
                raise FieldError(
                    "--roles", "the embedded database's roles are built into its owner; use --roles with a server DSN"
                )
            for statement in schema.role_ddl(database_of(client), cluster):
                client.command(statement)
            console.print("roles otel_writer_role, otel_reader_role, otel_admin_role created")
        if traces_ttl_days is not None:
            client.command(schema.traces_ttl_sql(traces_ttl_days, database_of(client), cluster))
            what = f"{traces_ttl_days} days (decision and review spans kept)" if traces_ttl_days else "removed"
            console.print(f"otel_traces TTL: {what}")
    finally:
        client.close()


# --- db ---------------------------------------------------------------------------------------------
@db_app.command("info")
@handle_errors
def db_info(
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
    fmt: str = typer.Option("table", "--format", "-f", help=f"One of {', '.join(FORMATS)}."),
) -> None:
    """Where the store is, its version, migrations and row counts."""
    from otel_decisions.settings import load_settings
    from otel_decisions.store.client import redact_dsn
    from otel_decisions.store.schema import store_info

    _check_format(fmt)
    resolved = dsn or load_settings().resolved_dsn
    client = _client(resolved, "reader")
    try:
        info = {"dsn": redact_dsn(resolved), **store_info(client)}
    finally:
        client.close()
    if fmt == "json":
        typer.echo(json.dumps(jsonable(info), indent=2))
        return
    _print(render_rows(["key", "value"], [(k, cell_text(v)) for k, v in info.items()], fmt, title="Decision store"))


# --- models -----------------------------------------------------------------------------------------
def _when(text: str | None, option: str) -> datetime | None:
    if text is None:
        return None
    from otel_decisions.catalogue import parse_datetime

    try:
        return parse_datetime(text)
    except ValueError:
        raise OtelDecisionsError(
            f"{option} {text!r}: use an ISO date or time, e.g. 2026-01-31 or 2026-01-31T12:00:00Z"
        ) from None


@models_app.command("approve")
@handle_errors
def models_approve(
    model_name: str = typer.Argument(..., help="decision.model.name"),
    model_version: str = typer.Argument(..., help="decision.model.version"),
    by: str = typer.Option(..., "--by", help="Who approved it (name or pseudonym)."),
    since: Optional[str] = typer.Option(None, "--from", help="Approved from (ISO, UTC); default now."),
    until: Optional[str] = typer.Option(None, "--until", help="Approved until (ISO, UTC); default open-ended."),
    note: str = typer.Option("", "--note", help="Ticket or evidence reference."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
) -> None:
    """Record that a model version is approved for use."""
    from otel_decisions.store.approvals import approve_model
    from otel_decisions.store.schema import apply_migrations

    client = _client(dsn, "admin")
    try:
        apply_migrations(client)
        approval = approve_model(
            client,
            model_name,
            model_version,
            approved_by=by,
            approved_from=_when(since, "--from"),
            approved_until=_when(until, "--until"),
            note=note,
        )
    finally:
        client.close()
    end = approval.approved_until.isoformat() if approval.approved_until else "open-ended"
    console.print(f"approved {model_name} {model_version} from {approval.approved_from.isoformat()} until {end}")


@models_app.command("revoke")
@handle_errors
def models_revoke(
    model_name: str = typer.Argument(..., help="decision.model.name"),
    model_version: str = typer.Argument(..., help="decision.model.version"),
    at: Optional[str] = typer.Option(None, "--at", help="Revoked at (ISO, UTC); default now."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
) -> None:
    """End the open approval(s) of a model version."""
    from otel_decisions.store.approvals import revoke_model

    client = _client(dsn, "admin")
    try:
        count = revoke_model(client, model_name, model_version, at=_when(at, "--at"))
    finally:
        client.close()
    console.print(f"revoked {count} approval(s) of {model_name} {model_version}")


@models_app.command("list")
@handle_errors
def models_list(
    model_name: Optional[str] = typer.Argument(None, help="Only this model."),
    fmt: str = typer.Option("table", "--format", "-f", help=f"One of {', '.join(FORMATS)}."),
    dsn: Optional[str] = typer.Option(None, "--dsn", help=DSN_HELP),
) -> None:
    """List approvals."""
    from otel_decisions.store.approvals import list_approvals
    from otel_decisions.store.errors import store_error

    _check_format(fmt)
    client = _client(dsn, "reader")
    try:
        approvals = list_approvals(client, model_name)
    except OtelDecisionsError:
        raise
    except Exception as exc:
        raise store_error(exc, "models list") from exc
    finally:
        client.close()
    columns = ["model_name", "model_version", "approved_from", "approved_until", "approved_by", "note"]
    rows = [
        (a.model_name, a.model_version, a.approved_from, a.approved_until, a.approved_by, a.note) for a in approvals
    ]
    _print(render_rows(columns, rows, fmt, title="Model approvals"))
