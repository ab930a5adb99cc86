"""One client factory for both storage back ends, from one DSN.

``chdb:///path/to/dir`` (optionally ``?database=otel_name``) is the embedded database in that
directory: ClickHouse's engine (chDB) served by its own HTTP and native TCP listeners on loopback
from one owner process (:mod:`otel_decisions.store.embedded`, started on first use); every
process, this one included, is an HTTP client of it, logged in with the role it asks for.
``http(s)://user:password@host:port/db`` talks to a ClickHouse server as the DSN's user. Both
give the same clickhouse-connect ``Client``. Failures become :class:`StoreError` messages that
name the DSN and the fix.

Roles (embedded database; a server's DSN carries its own user): ``reader`` (SELECT), ``writer``
(INSERT; the exporter), ``admin`` (schema, approvals, lifecycle). A reader never creates a store:
a path with no embedded database is :class:`StoreNotFoundError`. Every session runs with
``session_timezone='UTC'`` so date-time parameters and results mean the same thing everywhere.

Example::

    from otel_decisions.store.client import get_client

    client = get_client("chdb:///tmp/decisions", role="reader")
    client.query("SELECT count() FROM decisions FINAL").result_rows
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qs, unquote, urlparse

from otel_decisions.errors import OtelDecisionsError, SettingsError, StoreError, StoreNotFoundError
from otel_decisions.settings import DecisionSettings, load_settings
from otel_decisions.store import embedded
from otel_decisions.store.errors import error_code, first_line, store_error
from otel_decisions.store.schema import apply_migrations

__all__ = ["chdb_database_of", "chdb_path_of", "database_of", "embedded_endpoint", "get_client", "redact_dsn"]

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")

SESSION_SETTINGS: dict[str, Any] = {
    "session_timezone": "UTC",
    # Duplicates of a decision always share a partition (same start time), so FINAL never needs
    # to merge across partitions; this lets it skip already-merged ones.
    "do_not_merge_across_partitions_select_final": 1,
    # Copies of a decision are identical rows, so a skip index can never drop one copy and keep
    # another: skip indexes (subject, flow run, task run) stay valid under FINAL.
    "use_skip_indexes_if_final": 1,
}


def redact_dsn(dsn: str) -> str:
    """The DSN with its password replaced by ``***`` (safe to print)."""
    parsed = urlparse(dsn)
    if parsed.password is None:
        return dsn
    netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)
    return parsed._replace(netloc=netloc).geturl()


def chdb_path_of(dsn: str) -> str | None:
    """The directory of a ``chdb:///path`` DSN (``None`` for a server DSN)."""
    parsed = urlparse(dsn)
    if parsed.scheme != "chdb":
        return None
    location = parsed.netloc or parsed.path
    return os.path.realpath(os.path.expanduser(location)) if location else None


def chdb_database_of(dsn: str) -> str:
    """The database a ``chdb://`` DSN names (``?database=``), default ``otel``."""
    return parse_qs(urlparse(dsn).query).get("database", [embedded.DEFAULT_DATABASE])[0]


def database_of(client: Any) -> str:
    """The database a client works in (``default`` when the DSN names none)."""
    return getattr(client, "database", None) or "default"


def _validate(dsn: str) -> None:
    parsed = urlparse(dsn)
    scheme = parsed.scheme.lower()
    if scheme == "chdb":
        if not (parsed.path or parsed.netloc):
            raise SettingsError(
                "dsn", f"{dsn!r}: a chdb DSN needs a directory, e.g. chdb:///var/lib/otel-decisions/chdb"
            )
        if parsed.netloc and parsed.netloc not in ("", "localhost"):
            raise SettingsError(
                "dsn", f"{dsn!r}: write the directory after three slashes, e.g. chdb:///{parsed.netloc}{parsed.path}"
            )
        database = chdb_database_of(dsn)
        if not (database.startswith(embedded.DATABASE_PATTERN.rstrip("*")) and _IDENT.match(database)):
            raise SettingsError(
                "dsn",
                f"{dsn!r}: the embedded database serves databases named otel or otel_<name> (letters, digits, _); "
                f"got {database!r}: use ?database=otel_{re.sub(r'[^A-Za-z0-9_]', '_', database)}",
            )
        return
    if scheme in ("http", "https"):
        if not parsed.hostname:
            raise OtelDecisionsError(
                f"dsn {redact_dsn(dsn)!r}: no host; use http(s)://user:password@host:port/database"
            )
        try:
            parsed.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as exc:
            raise OtelDecisionsError(f"dsn {redact_dsn(dsn)!r}: bad port ({exc}); use host:8123 or host:8443") from None
        return
    raise OtelDecisionsError(
        f"dsn {redact_dsn(dsn)!r}: unsupported scheme {parsed.scheme!r}; use chdb:///path/to/dir for the "
        "embedded database or http(s)://user:password@host:port/database for a ClickHouse server "
        "(setting `dsn`, env OTEL_DECISIONS_DSN)"
    )


def _server_error(dsn: str, exc: Exception) -> OtelDecisionsError:
    safe = redact_dsn(dsn)
    code = error_code(exc)
    if code is not None:
        return store_error(exc, f"ClickHouse server {safe}")
    return StoreError(
        f"cannot reach the ClickHouse server at {safe}: {first_line(exc)}. "
        "Check host, port and scheme (http 8123 / https 8443) and that the server is running."
    )


Role = Literal["reader", "writer", "admin"]
_prepared: set[tuple[str, str]] = set()
_prepared_lock = threading.Lock()


def get_client(dsn: str | None = None, settings: DecisionSettings | None = None, *, role: Role = "reader") -> Any:
    """A clickhouse-connect client for *dsn* (default ``settings.resolved_dsn``) with *role*'s rights.

    On the embedded database a ``writer`` or ``admin`` starts the owner if none runs and creates
    the DSN's database; a ``writer`` also has the schema applied (as admin, once per process), so
    what it inserts into exists. A ``reader`` needs an existing store. Raises
    :class:`StoreError` (or :class:`StoreNotFoundError`) with the cause and the fix.
    """
    import clickhouse_connect

    if dsn is None:
        dsn = (settings or load_settings()).resolved_dsn
    dsn = dsn.strip()
    _validate(dsn)
    if dsn.lower().startswith("chdb:"):
        return _embedded_client(dsn, role, settings)
    parsed = urlparse(dsn)
    kwargs: dict[str, Any] = {
        "host": parsed.hostname,
        "port": parsed.port or (8443 if parsed.scheme == "https" else 8123),
        "interface": parsed.scheme,
        "username": unquote(parsed.username) if parsed.username else "default",
        "password": unquote(parsed.password) if parsed.password else "",
        "connect_timeout": 10,
        "settings": SESSION_SETTINGS,
    }
    database = parsed.path.lstrip("/").split("/")[0]
    if database:
        kwargs["database"] = unquote(database)
    try:
        return clickhouse_connect.get_client(**kwargs)
    except Exception as exc:
        raise _server_error(dsn, exc) from exc


def embedded_passwords(settings: DecisionSettings | None) -> dict[str, str] | None:
    """The passwords the settings give the embedded database's users (``None``: generated ones)."""
    chosen = settings or load_settings()
    given = {
        role: secret.get_secret_value()
        for role, secret in (
            ("admin", chosen.embedded_admin_password),
            ("writer", chosen.embedded_writer_password),
            ("reader", chosen.embedded_reader_password),
        )
        if secret is not None
    }
    return given or None


def embedded_endpoint(dsn: str, *, start: bool = True, settings: DecisionSettings | None = None) -> embedded.Endpoint:
    """The running owner of a ``chdb://`` DSN's directory (started if *start* and none runs, with the
    settings' passwords for its users)."""
    path = Path(chdb_path_of(dsn) or "")
    if not start and not (path / "db").is_dir():
        raise StoreNotFoundError(
            f"no decision store here: {path} holds no embedded database. Point --dsn / OTEL_DECISIONS_DSN at "
            "the directory your flows record into (default: data_dir/chdb), or create one with "
            "`otel-decisions schema apply --dsn chdb://...`"
        )
    try:
        return embedded.ensure_server(path, passwords=embedded_passwords(settings) if start else None)
    except embedded.ConfigError as exc:
        raise SettingsError("dsn", f"{exc.field}: {exc}") from None
    except (embedded.ServerStartError, OSError) as exc:
        raise StoreError(
            f"the embedded database at {path} could not be served: {exc}. Another program may hold its files; "
            f"see {path / embedded.LOG_FILE}, or run `otel-decisions serve --dsn chdb://{path}` in the foreground to see why"
        ) from exc


def _embedded_client(dsn: str, role: Role, settings: DecisionSettings | None) -> Any:
    database = chdb_database_of(dsn)
    endpoint = embedded_endpoint(dsn, start=role != "reader", settings=settings)
    key = (str(chdb_path_of(dsn)), database)
    try:
        if role != "reader" and key not in _prepared:
            with _prepared_lock:
                if key not in _prepared:
                    admin = endpoint.client("admin", settings=SESSION_SETTINGS)
                    try:
                        admin.command(f"CREATE DATABASE IF NOT EXISTS `{database}`")
                        if role == "writer":  # what it writes into must exist; admins run `schema apply`
                            apply_migrations(admin, database=database)
                    finally:
                        admin.close()
                    if role == "writer":
                        _prepared.add(key)
        return endpoint.client(role, database=database, settings=SESSION_SETTINGS, connect_timeout=10)
    except OtelDecisionsError:
        raise
    except Exception as exc:
        raise store_error(exc, f"the embedded database {redact_dsn(dsn)}") from exc
