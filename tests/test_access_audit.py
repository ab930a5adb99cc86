"""The database-level access audit (HIPAA 164.312(b)): every read of decision data lands in ``access_log``.

A real embedded owner (``chdb://`` DSN, its own directory so the restart below disturbs no other
test) logs every finished query in ``system.query_log``; the view ``access_log_query_log_mv``
(:func:`otel_decisions.store.audit.ensure_query_log_feed`) copies the reads of decision tables into
the store's ``access_log`` with ``source = 'query_log'``:

- a raw and a parameterised ``SELECT`` by the reader (HTTP) and a native TCP read are each one
  row: user, OS user, query text, the subject pseudonym, the tables, the result rows;
- reads that touch no decision table are not copied;
- no role can read the query log except the admin, and no role can switch its own logging off;
- rows survive an owner restart, including reads made after the last flush before the stop.

Error checks read ClickHouse's numeric code (``exc.code``), never the message text.
"""

from __future__ import annotations

import hashlib
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import pytest
from clickhouse_connect.driver.exceptions import Error as ClickHouseError
from clickhouse_connect.driver.exceptions import ProgrammingError

from otel_decisions.store import audit, embedded, schema
from otel_decisions.store.client import get_client

DATABASE = "otel_audit"
SUBJECT = hashlib.sha256(b"access-audit-subject").hexdigest()  # 64 hex, like an HMAC pseudonym
OTHER_SUBJECT = hashlib.sha256(b"access-audit-other").hexdigest()
DECISION_ID = "00000000-0000-4000-8000-00000000a0d1"
Role = Literal["reader", "writer", "admin"]
ACCESS_DENIED = 497
SETTING_CONSTRAINT_VIOLATION = 452
LOCKED_SETTINGS = {
    "log_queries": "0",
    "log_queries_min_type": "'EXCEPTION_WHILE_PROCESSING'",
    "log_queries_min_query_duration_ms": "100000",
    "log_queries_probability": "0",
    "log_queries_cut_to_length": "1",
}


@dataclass(frozen=True)
class Store:
    dsn: str
    data_dir: Path


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    data_dir = tmp_path_factory.mktemp("access-audit") / "chdb"
    dsn = f"chdb://{data_dir}?database={DATABASE}"
    admin = get_client(dsn, role="admin")
    try:
        schema.apply_migrations(admin, database=DATABASE)
        assert audit.ensure_query_log_feed(admin, DATABASE)  # until apply_migrations calls it
        admin.command(
            f"INSERT INTO decisions (decision_id, subject_id, outcome) VALUES ('{DECISION_ID}', '{SUBJECT}', 'approve')"
        )
    finally:
        admin.close()
    yield Store(dsn, data_dir)
    embedded.stop_server(data_dir)


def access_rows(store: Store, query_ids: list[str]) -> dict[str, dict[str, Any]]:
    """The ``source = 'query_log'`` rows of ``access_log`` for *query_ids*, by query id (after a flush)."""
    admin = get_client(store.dsn, role="admin")
    try:
        admin.command("SYSTEM FLUSH LOGS")
        result = admin.query(
            "SELECT * FROM access_log WHERE source = 'query_log' AND query_id IN {ids:Array(String)}",
            parameters={"ids": query_ids},
        )
        rows = list(result.named_results())
    finally:
        admin.close()
    by_id = {row["query_id"]: row for row in rows}
    assert len(by_id) == len(rows), "one access_log row per query"
    return by_id


def test_reads_of_decision_data_land_in_access_log(store: Store) -> None:
    reader = get_client(store.dsn, role="reader")
    try:
        raw = reader.query(f"SELECT decision_id, outcome FROM decisions WHERE subject_id = '{SUBJECT}'")
        assert raw.result_rows == [(DECISION_ID, "approve")]
        bound = reader.query(
            "SELECT count() FROM decisions FINAL WHERE subject_id = {subject:String}",
            parameters={"subject": SUBJECT},
        )
        assert bound.result_rows == [(1,)]
        joined = reader.query(
            "SELECT count() FROM decisions AS d LEFT JOIN decision_reviews AS r ON r.decision_id = d.decision_id "
            f"WHERE d.subject_id IN ('{SUBJECT}', '{OTHER_SUBJECT}')"
        )
        unrelated = [reader.query("SELECT 1"), reader.query("SELECT count() FROM model_approvals")]
    finally:
        reader.close()
    ids = [raw.query_id, bound.query_id, joined.query_id] + [r.query_id for r in unrelated]
    rows = access_rows(store, ids)
    assert set(rows) == {raw.query_id, bound.query_id, joined.query_id}
    for result in (raw, bound, joined):
        row = rows[result.query_id]
        assert row["source"] == "query_log" and row["db_user"] == "otel_reader" and row["command"] == "sql"
        assert SUBJECT in row["subject_ids"] and row["subject_ids"].count(SUBJECT) == 1
        assert row["rows"] == len(result.result_rows) and row["phi_rows"] == 0
        assert row["at"].year >= 2026 and row["query_name"] == "" and row["export_format"] == ""
    assert rows[raw.query_id]["tables"] == [f"{DATABASE}.decisions"]
    assert SUBJECT in rows[bound.query_id]["parameters"]  # the bound value, logged substituted
    assert sorted(rows[joined.query_id]["tables"]) == [f"{DATABASE}.decision_reviews", f"{DATABASE}.decisions"]
    assert sorted(rows[joined.query_id]["subject_ids"]) == sorted([SUBJECT, OTHER_SUBJECT])


def test_a_native_tcp_read_is_recorded_with_its_os_user(store: Store) -> None:
    from clickhouse_driver import Client as TcpClient  # type: ignore[import-untyped]

    endpoint = embedded.read_endpoint(store.data_dir)
    assert endpoint is not None
    user, password = endpoint.users["reader"]
    native = TcpClient(host=endpoint.host, port=endpoint.tcp_port, user=user, password=password, database=DATABASE)
    try:
        marker, query_id = f"native-{time.time_ns()}", str(uuid.uuid4())
        sql = f"SELECT count() FROM decisions WHERE subject_id = '{SUBJECT}' AND '{marker}' != ''"
        assert native.execute(sql, query_id=query_id) == [(1,)]
    finally:
        native.disconnect()
    row = access_rows(store, [query_id])[query_id]
    assert row["db_user"] == "otel_reader" and row["os_user"]  # the native protocol sends the OS user
    assert marker in row["parameters"] and row["subject_ids"] == [SUBJECT]


def test_only_the_admin_reads_the_query_log(store: Store) -> None:
    for role in ("reader", "writer"):
        client = get_client(store.dsn, role=role)
        try:
            with pytest.raises(ClickHouseError) as denied:
                client.query("SELECT count() FROM system.query_log")
            assert getattr(denied.value, "code", None) == ACCESS_DENIED, role
            with pytest.raises(ClickHouseError) as denied:
                client.command("SYSTEM FLUSH LOGS")
            assert getattr(denied.value, "code", None) == ACCESS_DENIED, role
        finally:
            client.close()
    admin = get_client(store.dsn, role="admin")
    try:
        assert admin.command("SELECT count() > 0 FROM system.query_log") == 1
    finally:
        admin.close()


@pytest.mark.parametrize("role", ["reader", "writer", "admin"])
def test_no_role_can_switch_its_logging_off(store: Store, role: Role) -> None:
    client = get_client(store.dsn, role=role)
    endpoint = embedded.read_endpoint(store.data_dir)
    assert endpoint is not None
    user, password = endpoint.users[role]
    try:
        for setting, value in LOCKED_SETTINGS.items():
            with pytest.raises(ClickHouseError) as refused:
                client.query(f"SELECT 1 SETTINGS {setting} = {value}")
            assert getattr(refused.value, "code", None) == SETTING_CONSTRAINT_VIOLATION, setting
            with pytest.raises(ClickHouseError) as refused:
                client.command(f"SET {setting} = {value}")
            assert getattr(refused.value, "code", None) == SETTING_CONSTRAINT_VIOLATION, setting
        # clickhouse-connect refuses a setting the server reports read-only before sending it ...
        with pytest.raises(ProgrammingError):
            client.query("SELECT 1", settings={"log_queries": 0})
        # ... and the server refuses it as a URL parameter
        for setting, value in LOCKED_SETTINGS.items():
            request = urllib.request.Request(
                f"http://{endpoint.host}:{endpoint.http_port}/?{setting}={urllib.parse.quote(value.strip(chr(39)))}",
                data=b"SELECT 1",
                headers={"X-ClickHouse-User": user, "X-ClickHouse-Key": password},
            )
            with pytest.raises(urllib.error.HTTPError) as refused_http:
                urllib.request.urlopen(request, timeout=10).close()
            code = refused_http.value.headers.get("X-ClickHouse-Exception-Code")
            assert code == str(SETTING_CONSTRAINT_VIOLATION), setting
        assert client.command("SELECT getSetting('log_queries')") in (1, True, "1", "true")
    finally:
        client.close()


def test_reads_survive_an_owner_restart(store: Store) -> None:
    reader = get_client(store.dsn, role="reader")
    try:
        before = reader.query(f"SELECT count() FROM decisions WHERE subject_id = '{SUBJECT}'").query_id
    finally:
        reader.close()
    flushed = access_rows(store, [before])  # flushed: copied before the stop
    unflushed = get_client(store.dsn, role="reader")
    try:  # no flush after this read: the owner's stop must copy it
        last = unflushed.query(
            "SELECT count() FROM decision_events WHERE decision_id IN "
            f"(SELECT decision_id FROM decisions WHERE subject_id = '{SUBJECT}')"
        ).query_id
    finally:
        unflushed.close()
    old_pid = embedded.read_endpoint(store.data_dir).pid  # type: ignore[union-attr]
    assert embedded.stop_server(store.data_dir)

    reader = get_client(store.dsn, role="reader")  # starts a new owner
    try:
        assert embedded.read_endpoint(store.data_dir).pid != old_pid  # type: ignore[union-attr]
        after = reader.query(f"SELECT decision_id FROM decisions WHERE subject_id = '{SUBJECT}'").query_id
    finally:
        reader.close()
    rows = access_rows(store, [before, last, after])
    assert set(rows) == {before, last, after}
    assert rows[before] == flushed[before]
    assert sorted(rows[last]["tables"]) == [f"{DATABASE}.decision_events", f"{DATABASE}.decisions"]
    assert rows[after]["db_user"] == "otel_reader" and rows[after]["subject_ids"] == [SUBJECT]
    admin = get_client(store.dsn, role="admin")
    try:  # the same view serves the re-created query log: nothing to (re)create
        assert audit.ensure_query_log_feed(admin, DATABASE)
        assert (
            admin.command(
                f"SELECT count() FROM system.tables WHERE database = '{DATABASE}' AND name = '{audit.FEED_VIEW}'"
            )
            == 1
        )
    finally:
        admin.close()


def test_an_older_feed_definition_is_replaced(store: Store) -> None:
    admin = get_client(store.dsn, role="admin")
    try:
        admin.command(f"ALTER TABLE {audit.FEED_VIEW} MODIFY COMMENT 'an older definition'")
        assert audit.ensure_query_log_feed(admin, DATABASE)
        comment = f"SELECT comment FROM system.tables WHERE database = '{DATABASE}' AND name = '{audit.FEED_VIEW}'"
        assert admin.command(comment) == audit.FEED_VERSION
    finally:
        admin.close()
    reader = get_client(store.dsn, role="reader")
    try:
        query_id = reader.query("SELECT count() FROM otel_traces").query_id
    finally:
        reader.close()
    assert access_rows(store, [query_id])[query_id]["tables"] == [f"{DATABASE}.otel_traces"]


class _NoQueryLog:
    """A server client whose ``system.tables`` lists neither the query log nor anything else."""

    def __init__(self) -> None:
        self.commands: list[str] = []

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        return type("Result", (), {"result_rows": [("access_log", "")]})()

    def command(self, sql: str) -> None:
        self.commands.append(sql)


def test_no_query_log_means_no_feed(caplog: pytest.LogCaptureFixture) -> None:
    client = _NoQueryLog()
    with caplog.at_level(logging.INFO, logger="otel_decisions.store.audit"):
        assert audit.ensure_query_log_feed(client, "otel") is False
    assert client.commands == []
    assert any(r.levelno == logging.INFO and "system.query_log" in r.getMessage() for r in caplog.records)


def test_the_server_roles_and_the_feed_sql() -> None:
    statements = schema.role_ddl("otel")
    assert "GRANT SELECT ON system.query_log TO otel_admin_role" in statements
    assert "GRANT SYSTEM FLUSH LOGS ON *.* TO otel_admin_role" in statements
    assert not any("query_log" in s or "FLUSH" in s for s in statements if not s.endswith("otel_admin_role"))
    assert "GRANT ON CLUSTER `prod` SYSTEM FLUSH LOGS ON *.* TO otel_admin_role" in schema.role_ddl("otel", "prod")
    sql = audit.query_log_feed_sql("otel", cluster="prod")
    assert "`otel`.`access_log_query_log_mv` ON CLUSTER `prod`" in sql
    assert "DEFINER = CURRENT_USER SQL SECURITY DEFINER" in sql
    assert (
        "hasAny(tables, ['otel.decisions', 'otel.otel_traces', 'otel.decision_reviews', 'otel.decision_events'])" in sql
    )
