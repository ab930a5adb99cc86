"""The embedded database: chDB served to every process by ClickHouse's own HTTP and TCP listeners.

One process, the *owner*, holds ``data_dir/owner.lock`` for its whole life, runs chDB's
clickhouse-local engine on ``data_dir/db`` and keeps its HTTP and native TCP listeners open
(``SYSTEM START LISTEN`` inside one long ``chdb._chdb.query`` call on a background thread).
Every other process, and the owner itself, is a plain ClickHouse client of those listeners.
``ensure_server()`` returns the published endpoint or starts an owner as a detached
subprocess (``otel-decisions serve`` runs one in the foreground). The engine enforces users,
roles and grants. clickhouse-local has no writable access storage, so they live in the
generated users XML: its ``<roles>`` carry the same GRANT statements that ``role_grants()``
returns for a real server. The owner serves the databases matching :data:`DATABASE_PATTERN`.
Every finished query and every failed one lands in ``system.query_log`` (flushed each second;
no profile may switch that off); :mod:`otel_decisions.store.audit` copies the reads of decision
data from there into each store's ``access_log``.

``chdb._chdb.query`` is a private binding of chdb (pinned exactly in ``pyproject.toml``;
``tests/test_embedded_server.py`` fails loudly if its behaviour changes). This module imports
nothing from the rest of the package: the owner runs it as a script (``python -P embedded.py
serve-owner DATA_DIR``), so serving starts without importing Prefect or the SDK.

Example::

    from otel_decisions.store.embedded import ensure_server

    endpoint = ensure_server(Path("~/.local/share/otel-decisions/chdb").expanduser())
    client = endpoint.client("reader", database="otel")
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import hashlib
import http.client
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

ROLES = ("admin", "writer", "reader")
DATABASE_PATTERN = "otel*"
"""The databases an embedded owner serves (grants are on ``otel*.*``): ``otel``, ``otel_demo``, ..."""
DEFAULT_DATABASE = "otel"
USER_NAMES = {role: f"otel_{role}" for role in ROLES}
ROLE_NAMES = {role: f"otel_{role}_role" for role in ROLES}
ENDPOINT_FILE = "endpoint.json"
CREDENTIALS_FILE = "credentials.json"
LOCK_FILE = "owner.lock"
LOG_FILE = "owner.log"
EXIT_MARKER_FILE = "owner-exit.json"
PASSWORDS_ENV = "OTEL_EMBEDDED_PASSWORDS"
EXIT_ENGINE_DIED, EXIT_UNSTOPPABLE, EXIT_ALREADY_OWNED, EXIT_START_FAILED = 1, 70, 73, 75
KEEP_ALIVE_S = 2  # well under the 5 s clickhouse-local waits for connections, then force-exits
_HEALTH_FAILURES = 3  # consecutive failed health checks (1 s apart) that mean "listeners lost"
_OWNER_TAG = "otel-embedded-owner"  # log_comment of the blocking statement
QUERY_LOG_FLUSH_MS = 1000
QUERY_LOG_TTL_DAYS = 30
# Profile settings that decide whether a query is logged: constant for every user (a role that
# could set log_queries = 0 could read decision data unaudited; measured: unconstrained, it can).
QUERY_LOG_SETTINGS = {
    "log_queries": "1",
    "log_queries_min_type": "QUERY_FINISH",  # QueryFinish and both exception types, no QueryStart
    "log_queries_min_query_duration_ms": "0",
    "log_queries_probability": "1",
    "log_queries_cut_to_length": "100000",
}
# Run with <ignore-error>: killing the blocking statement goes on to the engine's own STOP
# LISTEN and KILLs, which end queries accepted after the owner's last KILL once nothing new can
# arrive (else clickhouse-local force-exits 5 s later, skipping Python's cleanup; measured).
# getServerPort() throws when START LISTEN failed (port taken), so the engine ends at once.
_ENGINE_SQL = (
    "SYSTEM START LISTEN QUERIES ALL; "
    "SELECT sleepEachRow(0.25) FROM system.numbers "
    "WHERE getServerPort('http_port') > 0 AND getServerPort('tcp_port') > 0 "
    "SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 0, "
    f"max_execution_time = 0, log_comment = '{_OWNER_TAG}' FORMAT Null; "
    "SYSTEM STOP LISTEN QUERIES ALL; "
    "SET log_comment = '{secret}'; "
    "KILL QUERY WHERE query_id != queryID() SYNC; "
    "SELECT sleep(0.5) FORMAT Null; "  # a request accepted just before STOP may register late
    "KILL QUERY WHERE query_id != queryID() SYNC; "
    # Reads that finished since the owner's flush reach the views (access_log) now; the engine's
    # own flush as it exits comes after the databases' views are shut down (measured).
    "SYSTEM FLUSH LOGS"
)
# The engine's internal session logs in as passwordless `default` and runs _ENGINE_SQL: these
# are all it needs. A row filter hides system.processes unless log_comment is the per-start
# secret, so a (loopback-only) `default` client can neither read nor kill anyone's queries.
DEFAULT_USER_GRANTS = (
    "GRANT SYSTEM LISTEN ON *.*",
    "GRANT SELECT ON system.numbers",
    "GRANT SELECT ON system.processes",
    "GRANT KILL QUERY ON *.*",
    "GRANT SYSTEM FLUSH LOGS ON *.*",  # the engine's last statement (harmless: it only writes the logs)
)
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}\*?$")  # a trailing * is a prefix pattern
log = logging.getLogger("otel_decisions.embedded")


class ConfigError(ValueError):
    """An invalid argument; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.problem = message


class ServerStartError(RuntimeError):
    """No owner published an endpoint in time (the message carries the owner log's tail)."""


def role_grants(database: str) -> dict[str, list[str]]:
    """GRANT statements, without grantee, that each role holds.

    On a real server: ``CREATE ROLE ROLE_NAMES[r]`` and ``<statement> TO ROLE_NAMES[r]``; the
    embedded owner writes the same statements into its users XML. No role gets READ/WRITE on
    sources (file, url, executable, remote, ...) nor CREATE TEMPORARY TABLE. Materialized views
    must say ``DEFINER = CURRENT_USER SQL SECURITY DEFINER``: without it they run with the
    inserter's rights (measured), and the writer cannot SELECT.
    """
    db = _identifier(database, "database")
    engines = (
        "MergeTree",
        "ReplacingMergeTree",
        "SummingMergeTree",
        "AggregatingMergeTree",
        "ReplicatedMergeTree",
        "ReplicatedReplacingMergeTree",
    )  # the last two: a cluster's
    return {
        "admin": [
            # no dictionaries: their sources reach URLs, files and other servers
            "GRANT SHOW, SELECT, INSERT, ALTER, CREATE DATABASE, CREATE TABLE, CREATE VIEW, "
            "DROP DATABASE, DROP TABLE, DROP VIEW, TRUNCATE, "
            "OPTIMIZE, SYSTEM MERGES, SYSTEM TTL MERGES, SYSTEM MOVES, SYSTEM SYNC REPLICA "
            f"ON {db}.*",
            *(f"GRANT TABLE ENGINE ON {engine}" for engine in engines),
            "GRANT KILL QUERY ON *.*",
            "GRANT SELECT ON system.processes",
            "GRANT SELECT ON system.events",
            "GRANT SELECT ON system.parts",
            "GRANT SELECT ON system.merges",
            # the access audit: the query log feeds each store's access_log (store/audit.py)
            "GRANT SELECT ON system.query_log",
            "GRANT SYSTEM FLUSH LOGS ON *.*",
        ],
        # A server's concrete database: spans only (the views write the typed tables as their definer).
        # A wildcard covers every table (ClickHouse grants no table on a database pattern), so the
        # embedded writer may insert into any otel* table; there the OS user is the boundary anyway
        # (credentials.json holds every role's password), and verify finds typed rows no span made.
        "writer": [f"GRANT INSERT ON {db}.*" if db.endswith("*") else f"GRANT INSERT ON {db}.otel_traces"],
        # A reader's reads are logged: the otel-decisions CLI writes its own access_log row (the query log
        # has the same reads, see store/audit.py). A pattern grants no single table, so on the embedded
        # database the reader stays read-only and the CLI writes that row as the writer.
        "reader": [f"GRANT SELECT ON {db}.*", *([] if db.endswith("*") else [f"GRANT INSERT ON {db}.access_log"])],
    }


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where and as whom to reach a running embedded database."""

    host: str
    http_port: int
    tcp_port: int
    users: dict[str, tuple[str, str]] = dataclasses.field(repr=False)  # role -> (user, password)
    pid: int
    start_id: str
    database: str

    def client(self, role: str = "reader", **kwargs: Any) -> Any:
        """A clickhouse-connect HTTP client logged in as ``role``."""
        import clickhouse_connect  # callers that only need ports never import it

        user, password = self.users[role]
        return clickhouse_connect.get_client(
            host=self.host, port=self.http_port, username=user, password=password, **kwargs
        )


# ----------------------------------------------------------------------------- helpers
def _identifier(value: str, field: str) -> str:
    if not _IDENT.match(value):
        raise ConfigError(field, f"{value!r} is not a plain identifier")
    return value


def _check_listen(host: str, passwords: Mapping[str, str] | None) -> str:
    """Normalise ``host``; refuse a non-loopback one unless every password is explicit."""
    host = "127.0.0.1" if host == "localhost" else host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError("host", f"{host!r} is not an IP address") from None
    if not address.is_loopback:
        for role in ROLES:
            if not (passwords or {}).get(role):
                raise ConfigError(f"passwords.{role}", f"must be set explicitly for host {host}")
    return host


def _write_private(path: Path, text: str) -> None:
    """Atomically replace ``path`` with ``text``, mode 0600."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return cast("dict[str, Any]", value) if isinstance(value, dict) else None


def _pid_alive(pid: int) -> bool:
    """True if ``pid`` runs and is not a zombie (a starter's unreaped owner child)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


def _lock_is_free(data_dir: Path) -> bool:
    """True if no process holds the owner lock (probes it without keeping it)."""
    if not data_dir.is_dir():
        return True
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # also drops the probe's lock
    return True


def _url(host: str, port: int, path: str) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{path}"


def _ping(host: str, port: int, timeout_s: float) -> bool:
    try:
        with urllib.request.urlopen(_url(host, port, "/ping"), timeout=timeout_s) as response:
            return cast(bytes, response.read()).strip() == b"Ok."
    except (OSError, ValueError, http.client.HTTPException):
        return False


def _tcp_open(host: str, port: int, timeout_s: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


def _query(host: str, port: int, user: str, password: str, sql: str, timeout_s: float) -> str:
    """Run one statement over HTTP (no keep-alive); raise OSError on any failure."""
    request = urllib.request.Request(
        _url(host, port, "/"),
        data=sql.encode(),
        headers={"X-ClickHouse-User": user, "X-ClickHouse-Key": password, "Connection": "close"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return cast(bytes, response.read()).decode()
    except urllib.error.HTTPError as error:
        raise OSError(f"HTTP {error.code}: {error.read().decode(errors='replace')[:500]}") from None
    except http.client.HTTPException as error:  # e.g. the engine's KILL cut the answer
        raise OSError(f"HTTP exchange failed: {error!r}") from None


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _load_credentials(data_dir: Path, passwords: Mapping[str, str] | None) -> dict[str, str]:
    """Stored passwords, overridden by ``passwords``, missing ones generated; saved 0600."""
    stored = _read_json(data_dir / CREDENTIALS_FILE) or {}
    result = {}
    for role in ROLES:
        entry = stored.get(role)
        result[role] = (
            (passwords or {}).get(role)
            or (entry.get("password") if isinstance(entry, dict) else None)
            or secrets.token_urlsafe(24)
        )
    wanted = {role: {"user": USER_NAMES[role], "password": result[role]} for role in ROLES}
    if wanted != stored:
        _write_private(data_dir / CREDENTIALS_FILE, json.dumps(wanted, indent=2))
    return result


def _config_xml(host: str, http_port: int, tcp_port: int) -> str:
    return (
        f"<clickhouse>\n  <listen_host>{host}</listen_host>\n"
        f"  <http_port>{http_port}</http_port>\n  <tcp_port>{tcp_port}</tcp_port>\n"
        f"  <keep_alive_timeout>{KEEP_ALIVE_S}</keep_alive_timeout>\n"
        "  <users_config>users.xml</users_config>\n  <ignore-error>1</ignore-error>\n"
        # an acknowledged INSERT is on disk: the spool forgets what the store confirmed
        "  <merge_tree><fsync_after_insert>1</fsync_after_insert>"
        "<fsync_part_directory>1</fsync_part_directory></merge_tree>\n"
        # a view created without SQL SECURITY takes the profile's default (DEFINER), not "none"
        "  <ignore_empty_sql_security_in_create_view_query>0</ignore_empty_sql_security_in_create_view_query>\n"
        # Mutations (lightweight DELETE: disposal, erasure) run one task per part; chDB gives 2 cores 4
        # slots and the scheduler then sleeps 0.1 s x 1.1^n + up to 1 s before it looks again, so a
        # DELETE on a table of 57 daily partitions took 32-36 s. With these it takes 0.5-0.8 s, and the
        # idle owner's CPU is unchanged (measured).
        "  <background_merges_mutations_concurrency_ratio>64</background_merges_mutations_concurrency_ratio>\n"
        "  <background_processing_pool_task_sleep_seconds_when_no_work_random_part>0"
        "</background_processing_pool_task_sleep_seconds_when_no_work_random_part>\n"
        "  <background_processing_pool_thread_sleep_seconds_if_nothing_to_do>0.01"
        "</background_processing_pool_thread_sleep_seconds_if_nothing_to_do>\n"
        # the access audit's source. clickhouse-local's `system` is a Memory database: the table is
        # made at the first flush of each start (the owner flushes at once) and starts empty.
        "  <query_log><database>system</database><table>query_log</table>"
        f"<flush_interval_milliseconds>{QUERY_LOG_FLUSH_MS}</flush_interval_milliseconds>"
        f"<ttl>event_date + INTERVAL {QUERY_LOG_TTL_DAYS} DAY DELETE</ttl></query_log>\n"
        "</clickhouse>\n"
    )


def _grants_xml(statements: Sequence[str]) -> str:
    return "<grants>" + "".join(f"<query>{s}</query>" for s in statements) + "</grants>"


def _users_xml(database: str, passwords: Mapping[str, str], secret: str) -> str:
    grants = role_grants(database)
    logged = "".join(f"<{name}>{value}</{name}>" for name, value in QUERY_LOG_SETTINGS.items())
    locked = "".join(f"<{name}><readonly/></{name}>" for name in QUERY_LOG_SETTINGS)
    roles = "".join(f"    <{ROLE_NAMES[r]}>{_grants_xml(grants[r])}</{ROLE_NAMES[r]}>\n" for r in ROLES)
    users = "".join(
        f"    <{USER_NAMES[r]}><password_sha256_hex>"
        f"{hashlib.sha256(passwords[r].encode()).hexdigest()}</password_sha256_hex>"
        f"<profile>default</profile><quota>default</quota>"
        f"{_grants_xml([f'GRANT {ROLE_NAMES[r]}'])}</{USER_NAMES[r]}>\n"
        for r in ROLES
    )
    return (
        "<clickhouse>\n  <profiles><default><poll_interval>1</poll_interval>"
        # views run with their creator's (admin's) rights, so the writer needs INSERT only
        "<default_materialized_view_sql_security>DEFINER</default_materialized_view_sql_security>"
        "<default_view_definer>CURRENT_USER</default_view_definer>"
        f"{logged}<constraints><poll_interval><readonly/></poll_interval>{locked}</constraints>"
        "</default></profiles>\n"
        f"  <quotas><default/></quotas>\n  <roles>\n{roles}  </roles>\n  <users>\n"
        "    <default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks>"
        f"<profile>default</profile><quota>default</quota>{_grants_xml(DEFAULT_USER_GRANTS)}"
        "<databases><system><processes><filter>"
        f"getSetting('log_comment') = '{secret}'</filter></processes></system></databases>"
        f"</default>\n{users}  </users>\n</clickhouse>\n"
    )


# ----------------------------------------------------------------------------- client side
def read_endpoint(data_dir: Path, *, timeout_s: float = 1.0) -> Endpoint | None:
    """The published endpoint of ``data_dir`` if its owner is alive and answers ``/ping``."""
    published = _read_json(Path(data_dir) / ENDPOINT_FILE)
    credentials = _read_json(Path(data_dir) / CREDENTIALS_FILE)
    if not published or not credentials:
        return None
    try:
        endpoint = Endpoint(
            host=str(published["host"]),
            http_port=int(published["http_port"]),
            tcp_port=int(published["tcp_port"]),
            pid=int(published["pid"]),
            users={r: (str(credentials[r]["user"]), str(credentials[r]["password"])) for r in ROLES},
            start_id=str(published["start_id"]),
            database=str(published["database"]),
        )
    except (KeyError, TypeError, ValueError):
        return None
    if not _pid_alive(endpoint.pid) or not _ping(endpoint.host, endpoint.http_port, timeout_s):
        return None
    return endpoint


def default_owner_command() -> list[str]:
    """Command prefix that runs this module's CLI in a fresh interpreter."""
    return [sys.executable, "-P", os.path.abspath(__file__)]  # -P: no script directory on sys.path


def ensure_server(
    data_dir: Path,
    *,
    timeout_s: float = 30.0,
    database: str = DATABASE_PATTERN,
    host: str = "127.0.0.1",
    passwords: Mapping[str, str] | None = None,
    idle_exit_s: float | None = 600.0,
    owner_command: Sequence[str] | None = None,
) -> Endpoint:
    """Return the live endpoint of ``data_dir``, starting a detached owner if there is none.

    Safe from many processes at once: one owner wins ``owner.lock``, the other starters'
    owners exit quietly and every caller waits for the winner's ``endpoint.json``. A stale
    endpoint (dead owner) is replaced. ``database``, ``host``, ``passwords`` and ``idle_exit_s``
    apply only if this call starts the owner. ``owner_command`` replaces
    ``default_owner_command()`` (``serve-owner DATA_DIR ...`` is appended). Raises
    ``ConfigError`` for bad arguments and ``ServerStartError`` on timeout.
    """
    data_dir = Path(data_dir)
    _identifier(database, "database")
    _check_listen(host, passwords)
    deadline, spawned = time.monotonic() + timeout_s, 0
    child: subprocess.Popen[bytes] | None = None
    while (endpoint := read_endpoint(data_dir)) is None:
        exited = None if child is None else child.poll()
        if exited not in (None, 0, EXIT_ALREADY_OWNED, EXIT_START_FAILED):  # 73: lost the race; 75: retry
            raise _start_error(data_dir, f"the owner exited with status {exited}")
        if (child is None or exited is not None) and _lock_is_free(data_dir):
            if spawned == 8:
                raise _start_error(data_dir, "8 owners started and none published")
            child = _spawn_owner(data_dir, database, host, passwords, idle_exit_s, owner_command)
            spawned += 1
        if time.monotonic() > deadline:
            raise _start_error(data_dir, f"no owner published in {timeout_s:g} s")
        time.sleep(0.02)
    return endpoint


def _start_error(data_dir: Path, why: str) -> ServerStartError:
    log_path = data_dir / LOG_FILE
    tail = log_path.read_text(errors="replace")[-2000:] if log_path.exists() else ""
    return ServerStartError(f"{why}; owner log ({log_path}) ends:\n{tail}")


def _spawn_owner(
    data_dir: Path,
    database: str,
    host: str,
    passwords: Mapping[str, str] | None,
    idle_exit_s: float | None,
    owner_command: Sequence[str] | None,
) -> subprocess.Popen[bytes]:
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    args = [
        *(owner_command or default_owner_command()),
        "serve-owner",
        str(data_dir.resolve()),
        "--database",
        database,
        "--host",
        host,
    ]
    if idle_exit_s is not None:
        args += ["--idle-exit-s", str(idle_exit_s)]
    env = {key: value for key, value in os.environ.items() if key != PASSWORDS_ENV}
    env["TZ"] = "UTC"
    if passwords:
        env[PASSWORDS_ENV] = json.dumps(dict(passwords))  # not argv: that is world-readable
    log_fd = os.open(data_dir / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:  # cwd "/": chdb's import-time probe reads ./config.xml of wherever it starts
        return subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log_fd,
            cwd="/",
            env=env,
            start_new_session=True,
        )
    finally:
        os.close(log_fd)


def stop_server(data_dir: Path, *, timeout_s: float = 15.0) -> bool:
    """SIGTERM the published owner and wait for it to exit; False if none or it did not stop."""
    published = _read_json(Path(data_dir) / ENDPOINT_FILE)
    pid = int(published["pid"]) if published and "pid" in published else 0
    if not pid or not _pid_alive(pid):
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while _pid_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# ----------------------------------------------------------------------------- owner side
def run_owner(
    data_dir: Path,
    *,
    host: str = "127.0.0.1",
    http_port: int = 0,
    tcp_port: int = 0,
    database: str = DATABASE_PATTERN,
    passwords: Mapping[str, str] | None = None,
    idle_exit_s: float | None = None,
    start_timeout_s: float = 30.0,
    ready: Callable[[Endpoint], None] | None = None,
) -> int:
    """Own and serve ``data_dir`` until SIGTERM/SIGINT or ``idle_exit_s`` without queries.

    Returns 0 after a clean stop, 73 at once if another process owns ``data_dir``; 1 if
    the engine ended by itself, 75 if it could not start (e.g. a port was taken: retry).
    A port of 0 means "pick a free one". ``ready`` is called with the endpoint once the listeners
    answer and before the endpoint is published (in this thread; the engine serves meanwhile), so
    what it prepares (a schema) is there for every client that finds the endpoint. Changes this process's cwd, TZ and
    signal handlers, and runs once per process (chDB's engine cannot restart in-process).
    """
    data_dir = Path(data_dir).resolve()
    _identifier(database, "database")
    host = _check_listen(host, passwords)
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock_fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(lock_fd)
        return EXIT_ALREADY_OWNED
    try:
        owner = _Owner(data_dir, host, database, _load_credentials(data_dir, passwords), ready)
        return owner.serve(http_port or _free_port(host), tcp_port or _free_port(host), idle_exit_s, start_timeout_s)
    finally:
        os.close(lock_fd)  # releases the flock


class _Owner:
    """The owning process: engine thread, publication, health and idle watch, stop."""

    def __init__(
        self,
        data_dir: Path,
        host: str,
        database: str,
        passwords: dict[str, str],
        ready: Callable[[Endpoint], None] | None = None,
    ):
        self.data_dir, self.listen_host, self.database = data_dir, host, database
        self.host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)  # where clients dial
        self.passwords = passwords
        self.ready = ready
        self.start_id = secrets.token_hex(8)
        self.secret = secrets.token_hex(16)  # unlocks system.processes for the engine's KILL
        self.stop = threading.Event()
        self.reason = "stopped"
        self.engine_error: BaseException | None = None
        self.thread = threading.Thread(target=self._engine, name="chdb-listeners", daemon=True)
        self.http_port = 0
        self.listening = False  # our listeners answered: the admin may flush the query log

    def _engine(self) -> None:
        from chdb import _chdb  # imported by serve() before the chdir

        try:
            sql = _ENGINE_SQL.replace("{secret}", self.secret)
            _chdb.query(sql, "TSV", path=str(self.data_dir / "db"))  # type: ignore[attr-defined]
        except BaseException as error:  # noqa: BLE001 - the engine thread reports everything to the main thread
            self.engine_error = error

    def _admin(self, sql: str, timeout_s: float = 5.0) -> str:
        return _query(self.host, self.http_port, USER_NAMES["admin"], self.passwords["admin"], sql, timeout_s)

    def _flush_logs(self, when: str) -> None:
        """``SYSTEM FLUSH LOGS``: the query log's table (at start) and its views' copies (at stop).

        A failure is logged, not fatal: the engine flushes by itself each second, and creates the
        table then (views on it keep working once it exists).
        """
        try:
            self._admin("SYSTEM FLUSH LOGS", timeout_s=10.0)
        except OSError as error:
            log.warning("SYSTEM FLUSH LOGS at %s failed: %s", when, error)

    def _on_signal(self, signum: int, _frame: types.FrameType | None) -> None:
        self.reason = signal.Signals(signum).name
        self.stop.set()

    def serve(self, http_port: int, tcp_port: int, idle_exit_s: float | None, start_timeout_s: float) -> int:
        """Start the engine, publish, wait, stop; returns the exit code."""
        self.http_port = http_port
        (self.data_dir / ENDPOINT_FILE).unlink(missing_ok=True)  # stale: we hold the lock now
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_signal)
        _write_private(self.data_dir / "config.xml", _config_xml(self.listen_host, http_port, tcp_port))
        _write_private(self.data_dir / "users.xml", _users_xml(self.database, self.passwords, self.secret))
        os.environ["TZ"] = "UTC"  # <timezone> in the config is not honoured
        time.tzset()
        from chdb import _chdb  # noqa: F401 - its import-time probe reads ./config.xml

        os.chdir(self.data_dir)  # LocalServer finds ./config.xml; its argv carries no ports
        started = time.monotonic()
        self.thread.start()
        while not _ping(self.host, http_port, 0.5):
            if not self.thread.is_alive() or time.monotonic() - started > start_timeout_s:
                self.reason = f"listeners did not come up ({self.engine_error!r})"
                return self._shutdown(EXIT_START_FAILED, kill_for_s=2.0)
            time.sleep(0.01)
        for signum in (signal.SIGTERM, signal.SIGINT):  # clickhouse-local took SIGINT over
            signal.signal(signum, self._on_signal)
        self.listening = True
        # system.query_log exists from its first flush on: before any client may create views on it
        self._flush_logs("start")
        try:
            self._admin(f"CREATE DATABASE IF NOT EXISTS {self.database.rstrip('*') or DEFAULT_DATABASE}")
        except OSError as error:
            self.reason = f"cannot create database {self.database}: {error}"
            return self._shutdown(EXIT_START_FAILED, kill_for_s=15.0)
        if self.ready is not None:
            try:
                self.ready(
                    Endpoint(
                        self.host,
                        http_port,
                        tcp_port,
                        {r: (USER_NAMES[r], self.passwords[r]) for r in ROLES},
                        os.getpid(),
                        self.start_id,
                        self.database,
                    )
                )
            except Exception as error:  # noqa: BLE001 - reported, then a clean stop
                self.reason = f"ready callback failed: {error!r}"
                return self._shutdown(EXIT_ENGINE_DIED, kill_for_s=15.0)
        _write_private(
            self.data_dir / ENDPOINT_FILE,
            json.dumps(
                {
                    "host": self.host,
                    "listen_host": self.listen_host,
                    "http_port": http_port,
                    "tcp_port": tcp_port,
                    "pid": os.getpid(),
                    "start_id": self.start_id,
                    "database": self.database,
                    "started_at": time.time(),
                },
                indent=2,
            ),
        )
        log.info(
            "serving %s on http %d, tcp %d (start %s, up in %.3f s)",
            self.data_dir,
            http_port,
            tcp_port,
            self.start_id,
            time.monotonic() - started,
        )
        code = self._watch(tcp_port, idle_exit_s)
        return self._shutdown(code, kill_for_s=0.0 if code == EXIT_UNSTOPPABLE else 15.0)

    def _watch(self, tcp_port: int, idle_exit_s: float | None) -> int:
        """Block until a signal or idleness (0), the engine ending, or lost listeners."""
        activity = (
            "SELECT (SELECT value FROM system.events WHERE event = 'Query'), "
            "(SELECT count() FROM system.processes WHERE query_id != queryID() "
            f"AND Settings['log_comment'] != '{_OWNER_TAG}')"
        )
        last_total, idle_since, failures = -1, time.monotonic(), 0
        while not self.stop.wait(1.0):
            if not self.thread.is_alive():
                self.reason = f"engine stopped unexpectedly ({self.engine_error!r})"
                return EXIT_ENGINE_DIED
            try:
                if not _tcp_open(self.host, tcp_port, 2.0):
                    raise OSError("native port closed")
                if idle_exit_s is None:
                    if not _ping(self.host, self.http_port, 2.0):
                        raise OSError("HTTP ping failed")
                else:
                    answer = self._admin(activity).split()
                    if len(answer) != 2 or not all(part.isdigit() for part in answer):
                        raise OSError(f"unexpected activity answer {answer!r}")
                    total, running = int(answer[0]), int(answer[1])
                    if running or total > last_total + 1:  # +1: this poll itself
                        idle_since = time.monotonic()
                    last_total = total
                    if time.monotonic() - idle_since >= idle_exit_s:
                        self.reason = f"idle for {idle_exit_s:g} s"
                        return 0
                failures = 0
            except OSError as error:
                failures += 1
                if failures >= _HEALTH_FAILURES:  # e.g. local `default` ran SYSTEM STOP LISTEN
                    self.reason = f"listeners lost: {error}"
                    return EXIT_UNSTOPPABLE
        return 0

    def _shutdown(self, code: int, *, kill_for_s: float) -> int:
        """Unpublish, flush the query log, KILL every query until the engine ends, write the exit marker.

        Killing the blocking statement lets the engine stop listening and then kill, itself,
        whatever slipped in after our KILL. If the engine cannot be ended (its listeners are
        gone), leave with ``os._exit``: interpreter finalisation would wait on its thread.
        """
        (self.data_dir / ENDPOINT_FILE).unlink(missing_ok=True)
        if self.listening and code != EXIT_UNSTOPPABLE and self.thread.is_alive():
            # Queries logged since the last flush reach the views now: the engine's own flush when
            # it ends comes after the databases' views are gone (measured: the log keeps the rows,
            # the access_log copy misses them).
            self._flush_logs("stop")
        deadline = time.monotonic() + kill_for_s
        while self.thread.is_alive() and time.monotonic() < deadline:
            with contextlib.suppress(OSError):  # listeners closed, or the engine's KILL cut us
                self._admin("KILL QUERY WHERE query_id != queryID() SYNC")
            self.thread.join(0.1)
        clean = not self.thread.is_alive()
        code = code if clean else EXIT_UNSTOPPABLE
        _write_private(
            self.data_dir / EXIT_MARKER_FILE,
            json.dumps(
                {
                    "pid": os.getpid(),
                    "start_id": self.start_id,
                    "reason": self.reason,
                    "clean": clean,
                    "exit_code": code,
                    "stopped_at": time.time(),
                }
            ),
        )
        log.info("owner %s stopped (%s, clean=%s)", self.start_id, self.reason, clean)
        if not clean:
            logging.shutdown()
            os._exit(code)
        return code


# ----------------------------------------------------------------------------- CLI
def main(argv: Sequence[str] | None = None) -> int:
    """``serve-owner DATA_DIR [--host H] [--http-port P] [--tcp-port P] [--database D]
    [--idle-exit-s S]``; passwords: a JSON object in ``$OTEL_EMBEDDED_PASSWORDS``."""
    parser = argparse.ArgumentParser(prog="otel_decisions.store.embedded")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve-owner", aliases=["owner"], help="own and serve DATA_DIR")
    serve.add_argument("data_dir", type=Path)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--http-port", type=int, default=0)
    serve.add_argument("--tcp-port", type=int, default=0)
    serve.add_argument("--database", default=DATABASE_PATTERN)
    serve.add_argument("--idle-exit-s", type=float, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(process)d %(levelname)s %(message)s"
    )
    try:
        passwords = json.loads(os.environ.pop(PASSWORDS_ENV, "") or "{}")
        return run_owner(
            args.data_dir,
            host=args.host,
            http_port=args.http_port,
            tcp_port=args.tcp_port,
            database=args.database,
            passwords=passwords,
            idle_exit_s=args.idle_exit_s,
        )
    except (ConfigError, ValueError) as error:
        log.error("%s", error)
        return 2


if __name__ == "__main__":
    sys.exit(main())
