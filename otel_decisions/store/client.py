"""One client factory for both storage back ends, from one DSN.

``chdb:///path/to/dir`` (optionally ``?database=name``) opens the embedded chDB engine in this process (the default,
``settings.resolved_dsn``: a per-user data directory); ``http(s)://user:password@host:port/db``
talks to a ClickHouse server. Both go through clickhouse-connect, so every caller sees
the same ``Client`` API. Failures become :class:`OtelDecisionsError` messages that name
the DSN and the fix (a locked chDB path, an unreachable server, bad credentials, a bad DSN).

Every session runs with ``session_timezone='UTC'`` so date-time parameters and results
mean the same thing on a laptop and on a server.

Example::

    from otel_decisions.store.client import get_client
    client = get_client("chdb:///tmp/decisions")
    client.query("SELECT count() FROM decisions FINAL").result_rows
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from otel_decisions.errors import OtelDecisionsError, StoreError
from otel_decisions.settings import DecisionSettings, load_settings
from otel_decisions.store.errors import error_code, first_line, store_error

__all__ = ["get_client", "redact_dsn", "database_of", "chdb_path_of"]

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
    """The filesystem path of a ``chdb:///path`` DSN (``None`` for in-memory chDB or a server)."""
    parsed = urlparse(dsn)
    if parsed.scheme != "chdb":
        return None
    location = parsed.netloc or parsed.path
    if parsed.netloc:
        return None if parsed.netloc in ("memory", ":memory:") else parsed.netloc
    return os.path.realpath(location) if location not in ("", "memory", ":memory:") else None


def database_of(client: Any) -> str:
    """The database a client works in (``default`` when the DSN names none)."""
    return getattr(client, "database", None) or "default"


def _validate(dsn: str) -> None:
    parsed = urlparse(dsn)
    scheme = parsed.scheme.lower()
    if scheme == "chdb":
        if not (parsed.path or parsed.netloc):
            raise OtelDecisionsError(
                f"dsn {dsn!r}: a chdb DSN needs a directory, e.g. chdb:///var/lib/otel-decisions/chdb "
                "(or chdb://memory for a throw-away in-memory database)"
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


def _lock_holder(path: str) -> int | None:
    """PID of another live process holding the chDB engine at *path*, if any."""
    status = Path(path) / "status"
    try:
        text = status.read_text()
    except OSError:
        return None
    match = re.search(r"PID:\s*(\d+)", text)
    if not match:
        return None
    pid = int(match.group(1))
    if pid == os.getpid():
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return pid
    return pid


def _chdb_error(dsn: str, exc: Exception) -> OtelDecisionsError:
    path = chdb_path_of(dsn) or dsn
    holder = _lock_holder(path) if chdb_path_of(dsn) else None
    text = str(exc)
    if holder is not None:
        return OtelDecisionsError(
            f"the embedded chDB database at {path} is locked by another process (pid {holder}). chDB allows one "
            "process per data directory: stop that process, point this one at another directory "
            "(--dsn chdb:///other/path or OTEL_DECISIONS_DSN), or run a ClickHouse server and use an "
            "http(s):// DSN so several processes can share the data."
        )
    if "different path" in text or "another path" in text or "already" in text.lower():
        return OtelDecisionsError(
            f"cannot open chDB at {path}: this process already has chDB open at another path and chDB allows one "
            f"engine per process ({text}). Use the same DSN everywhere in the process."
        )
    return OtelDecisionsError(f"cannot open the embedded chDB database at {path}: {text}")


def _server_error(dsn: str, exc: Exception) -> OtelDecisionsError:
    safe = redact_dsn(dsn)
    code = error_code(exc)
    if code is not None:
        return store_error(exc, f"ClickHouse server {safe}")
    return StoreError(
        f"cannot reach the ClickHouse server at {safe}: {first_line(exc)}. "
        "Check host, port and scheme (http 8123 / https 8443) and that the server is running."
    )


def get_client(dsn: str | None = None, settings: DecisionSettings | None = None) -> Any:
    """A clickhouse-connect client for *dsn* (default ``settings.resolved_dsn``).

    Raises :class:`OtelDecisionsError` with the cause and the fix when it cannot connect.
    """
    import clickhouse_connect

    if dsn is None:
        dsn = (settings or load_settings()).resolved_dsn
    dsn = dsn.strip()
    _validate(dsn)
    if dsn.lower().startswith("chdb:"):
        path = chdb_path_of(dsn)
        if path is not None:
            Path(path).mkdir(parents=True, exist_ok=True)
        database = parse_qs(urlparse(dsn).query).get("database", [""])[0]
        try:
            if database and database != "default":
                # chDB has no server to create it for us: make sure the database exists first.
                bootstrap = clickhouse_connect.get_client(dsn=dsn.split("?", 1)[0], settings=SESSION_SETTINGS)
                try:
                    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS `{database.replace('`', '``')}`")
                finally:
                    bootstrap.close()
            return clickhouse_connect.get_client(dsn=dsn, settings=SESSION_SETTINGS)
        except Exception as exc:  # chdb raises ProgrammingError/RuntimeError variants
            raise _chdb_error(dsn, exc) from exc
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
