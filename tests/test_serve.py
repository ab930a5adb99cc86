"""``otel-decisions serve``: ClickHouse's HTTP interface over chDB, exercised by real clients.

The server always runs in its own process (``python -m otel_decisions.serve``), as in
production and because chDB allows one engine per process; this process only speaks HTTP
to it: clickhouse-connect's HTTP driver, raw ``http.client`` requests (chunked bodies,
compressed framing, errors, auth) and signals for the graceful-shutdown test.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import pytest

from otel_decisions.errors import OtelDecisionsError
from otel_decisions.serve import (
    ChdbHttpServer,
    _split_insert,
    ch_compress,
    ch_decompress_stream,
    cityhash128,
    native_for_revision,
)

_READY = re.compile(r"serving ClickHouse HTTP on (\S+):(\d+)")


class ServeProcess:
    """``python -m otel_decisions.serve`` in a subprocess on a free loopback port."""

    def __init__(self, path: Path, *extra: str, env: dict[str, str] | None = None, cli: bool = False) -> None:
        self.path = path
        self.cli = cli
        self.extra = extra
        self.env = env
        self.proc: subprocess.Popen[str] | None = None
        self.port = 0
        self.output: list[str] = []

    def start(self, timeout_s: float = 60.0) -> ServeProcess:
        self.output = []
        command = ["-c", "from otel_decisions.cli import main; main()", "serve"] if self.cli else ["-m", "otel_decisions.serve"]
        self.proc = subprocess.Popen(
            [sys.executable, *command, "--dsn", f"chdb://{self.path}", "--port", "0", *self.extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(self.env or {})},
        )
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.output.append(line)
            match = _READY.search(line)
            if match:
                self.port = int(match.group(2))
                threading.Thread(target=self._pump, daemon=True).start()
                return self
        self.proc.kill()
        raise RuntimeError("serve did not start:\n" + "".join(self.output))

    def _pump(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, sig: int = signal.SIGTERM, timeout_s: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout_s)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("serve") / "chdb").start()
    yield proc
    assert proc.stop() == 0, "".join(proc.output)


def request(
    port: int,
    method: str,
    params: dict[str, str] | None = None,
    body: bytes | Iterator[bytes] | None = None,
    headers: dict[str, str] | None = None,
    path: str = "/",
) -> tuple[int, dict[str, str], bytes]:
    """One raw HTTP request; an iterator body goes out with chunked transfer encoding."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    url = path + ("?" + urlencode(params) if params else "")
    hdrs = dict(headers or {})
    if body is not None and not isinstance(body, bytes):
        conn.request(method, url, body=body, headers=hdrs, encode_chunked=True)
    else:
        conn.request(method, url, body=body, headers=hdrs)
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, data


def client(server: ServeProcess, **kwargs: object):  # type: ignore[no-untyped-def]
    import clickhouse_connect

    return clickhouse_connect.get_client(host="127.0.0.1", port=server.port, **kwargs)


# ------------------------------------------------------------------------------------
# Pure pieces: ClickHouse's checksum, block framing, where an INSERT's data starts
# ------------------------------------------------------------------------------------

# (input, low, high) from ClickHouse's CityHash128 (v1.0.2) test vectors
CITYHASH128_VECTORS = [
    ("I", 0x3a4a285c94f1936e, 0x18115b183f326829),
    ("uM4", 0xf567f556f5e83547, 0xa5c90efc9fbfd1f4),
    ("nYUkHfL", 0x1a5dcb41c6c5af4b, 0x6e6fb2894e712ca0),
    ("hgshOXeh", 0x3d827f87ef026cde, 0xdb3ea59195083762),
    ("jq4yNr2sh", 0x2f6dc419deac4528, 0x2ac6994229cb757c),
    ("vG5lApCgvf0qHGSi0", 0x9b4e57c5f1bc0e44, 0x94238ef9d1584336),
    ("iQYX4e0w23d9Nu9lu4CcD5J12xC43El", 0xcf289326b4b8112e, 0x9b3c70221b26da25),
    ("Gv46ueHUXbDvkTiKLlYotjhYAgb3kS2WB", 0x7a3ba1d735c6cd5e, 0x6122b267103409e0),
    ("FBEDVed3uJrNqDDtSumHy9uH8SBEjHIVIIpHzxPkOlTB7RLRZK5OV7Ooi6kbgI1jOrxrSHEhLvSmS43PnfjfYZRR4loLR1V10n8U", 0xa4b5a2eadad2e953, 0x99737018ca2fa11d),
    ("LpFcKNK9ybSpbCpocXvnwdqgqtbXUb32dQoSpdswmqpt73vs4w6etFJzyaEdD2V7vXSVLEPThCJYMa5eIjMD56JQKYTQwQyTLQT87Lysb6TfC1s0uWuuye96Wwml133", 0x4503305a9798430f, 0xb9bb426af29e421c),
    ("yAWO2qGgsX9sDMCwgVoZc6JiEBHNvnO5flnGjwx0jj1b54VYEdUeox5KgrDKMOJe2kF08StGwtElfNxTUccCIFbiN3LmtVrVps4MScfkE5G7KTfHcJHRpYJY7rSlfyh5", 0x6b818e4caac9641c, 0x8d575710f793d15a),
    ("9YwzHHoZLcvWHD9kxfUo5YTgaPNwXRP4SGxsYC53LuJQUj48ZDUhHftQamg6J0pTA3hY5AVtWy6W7JP8RnGXZbbXOVxvXbY9tI0xyLoTNbWm3im4U6EgOs3u5u7kJRTDs", 0x4fead0d0872da4c6, 0x52bb5177cde8b75),
    ("1AXwruR6a8zsbgPEB1YrHmLfA1zILElGPOsDa70djb2NlnGpJbYNDRHtIi7iksJpFV3zLbtSyL3LnDTDJHJxv6YvPOmvgi8IQFrGQNHowl9amVbIzqV77301ZFnuBeDFPcmH4WvqxKWW0hTpUFnygpyOY3QZzPGAUzpxAWNDDI9KQGP79vxTnw770nJ3BJwp9oQLTy98mGJrn5kh38iLk2tIkimAwmw8h2wxTosYOBBn3mxdmg6c9dPZmshUN1y", 0xe1332193d580d097, 0x17a4ca4718ed436),
    ("Vu3tP6k8p9PCiilR7S5M1YSrsCIjEj1pvip6YCFa8WwHm4KP8jSh5WnqACxnAKdowsePvinQgcTd6aoZfbc1vp6uF84CVwK4PzlSvjDmvZYvf8XgQxZR6V9fNhcjoOj6PUft6baUrsHyciYTbSfDKBN2inCahc0ho3NwD8YovZHBcje8SDQEtDtm6FfqviLfVQif0jD3LrCuRuASSxFRoLsnavppLyim9hFUstJsNlYv2VKlsJVAG6Ip4QfgJBcMetJujGVYiepMzF8nPGeCCmvxvKV3ykPwr1qH6NT5okzF", 0x82d81021a215b893, 0x6b79606dab35371a),
]


@pytest.mark.parametrize(("text", "low", "high"), CITYHASH128_VECTORS, ids=lambda v: str(len(v)) if isinstance(v, str) else "")
def test_cityhash128_matches_clickhouse(text: str, low: int, high: int) -> None:
    assert cityhash128(text.encode()) == (low, high)


def test_compressed_blocks_round_trip_and_corruption_is_detected() -> None:
    data = os.urandom(300_000) + b"x" * 2_500_000  # spans three 1 MiB blocks
    framed = ch_compress(data)
    assert len(framed) < len(data)
    pieces = [framed[i : i + 7777] for i in range(0, len(framed), 7777)]  # arbitrary cuts
    assert b"".join(ch_decompress_stream(pieces)) == data
    corrupted = bytearray(framed)
    corrupted[40] ^= 0xFF
    with pytest.raises(Exception, match="Checksum doesn't match"):
        b"".join(ch_decompress_stream([bytes(corrupted)]))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("INSERT INTO t FORMAT Native\n\nDATA", ("INSERT INTO t", "Native", "\nDATA")),  # data may start with \n
        ("INSERT INTO t (format, `values`) FORMAT CSV\r\n1,2\n", ("INSERT INTO t (format, `values`)", "CSV", "1,2\n")),
        ("insert into t format TSV 1\t2", ("insert into t", "TSV", "1\t2")),
        ("INSERT INTO t SETTINGS x = 'FORMAT' FORMAT JSONEachRow\n{}", ("INSERT INTO t SETTINGS x = 'FORMAT'", "JSONEachRow", "{}")),
        ("INSERT INTO t VALUES (1, 'FORMAT CSV')", None),
        ("INSERT INTO t SELECT 1 FORMAT CSV", None),
        ("INSERT INTO t FORMAT Nat", None),  # the format name may continue in the next bytes
        ("SELECT 1 FORMAT CSV", None),
    ],
)
def test_split_insert(text: str, expected: tuple[str, str, str] | None) -> None:
    split = _split_insert(text)
    if expected is None:
        assert split is None
    else:
        assert split is not None
        assert (split.statement, split.fmt, text[split.data_offset :]) == expected


def test_non_loopback_bind_needs_allow_remote_and_credentials(tmp_path: Path) -> None:
    with pytest.raises(OtelDecisionsError, match="--allow-remote"):
        ChdbHttpServer(tmp_path, host="0.0.0.0")
    with pytest.raises(OtelDecisionsError, match="--password"):
        ChdbHttpServer(tmp_path, host="0.0.0.0", allow_remote=True)
    ChdbHttpServer(tmp_path, host="0.0.0.0", allow_remote=True, user="u", password="p")  # accepted (not started)
    for host in ("127.0.0.1", "127.0.0.2", "localhost", "::1"):
        ChdbHttpServer(tmp_path, host=host)


def test_cli_refuses_a_remote_bind_without_the_flag(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from otel_decisions.cli import app

    result = CliRunner().invoke(app, ["serve", "--dsn", f"chdb://{tmp_path}", "--host", "0.0.0.0"])
    assert result.exit_code == 2
    assert "--allow-remote" in " ".join(result.output.split())


def test_cli_serve_answers_and_stops_on_sigint(tmp_path: Path) -> None:
    proc = ServeProcess(tmp_path / "db", cli=True).start()
    try:
        assert client(proc).command("SELECT 40 + 2") == 42
    finally:
        assert proc.stop(signal.SIGINT) == 0, "".join(proc.output)


def test_serve_help_says_one_machine() -> None:
    from typer.testing import CliRunner

    from otel_decisions.cli import app

    result = CliRunner().invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "one machine" in text and "ClickHouse server or a cluster" in text and "--allow-remote" in text


# ------------------------------------------------------------------------------------
# clickhouse-connect's HTTP driver against the server
# ------------------------------------------------------------------------------------


@pytest.mark.parametrize("compress", [False, "lz4", "gzip", "zstd"])
def test_clickhouse_connect_ddl_native_insert_and_parameterised_select(server: ServeProcess, compress: object) -> None:
    table = f"cc_{compress}"
    c = client(server, compress=compress)
    c.command(
        f"CREATE TABLE {table} (id UInt64, name String, attrs Map(LowCardinality(String), String), "
        "ts DateTime64(9), tags Array(String), score Nullable(Float64)) ENGINE = MergeTree ORDER BY id"
    )
    ts = datetime(2026, 1, 2, 3, 4, 5, 123456)
    rows = [[i, f"n{i}", {"k": str(i), "x": "y"}, ts, [f"t{i}"] * (i % 3), None if i % 5 else i / 2] for i in range(5000)]
    summary = c.insert(table, rows, column_names=["id", "name", "attrs", "ts", "tags", "score"])
    assert summary.written_rows == 5000
    assert c.query(f"SELECT count(), sum(id), countIf(score IS NULL) FROM {table}").result_rows == [(5000, 12497500, 4000)]
    got = c.query(
        f"SELECT name, attrs['k'], ts, tags FROM {table} WHERE id = {{id:UInt64}} AND name = {{name:String}}",
        parameters={"id": 7, "name": "n7"},
    ).result_rows
    assert got == [("n7", "7", ts, ["t7"])]
    df_rows = c.query(f"SELECT id FROM {table} WHERE id < %(n)s ORDER BY id", parameters={"n": 3}).result_rows
    assert df_rows == [(0,), (1,), (2,)]


@pytest.mark.parametrize(
    "hostile",
    ["it's", "back\\slash", "'; DROP TABLE hv; --", "tab\tnew\nline", "{x:String}", "ünïcødé ✓", "\\'", "", "NULL"],
)
def test_hostile_parameter_values_bind_as_values(server: ServeProcess, hostile: str) -> None:
    c = client(server)
    c.command("CREATE TABLE IF NOT EXISTS hv (s String) ENGINE = MergeTree ORDER BY s")
    # server-side binding ({name:Type}) -- the value never becomes SQL
    assert c.query("SELECT {v:String}", parameters={"v": hostile}).result_rows == [(hostile,)]
    # and it round-trips through an insert and a parameterised filter
    c.insert("hv", [[hostile]], column_names=["s"])
    assert c.query("SELECT count() FROM hv WHERE s = {v:String}", parameters={"v": hostile}).result_rows[0][0] >= 1
    assert c.command("EXISTS TABLE hv") == 1


def test_errors_look_like_clickhouse(server: ServeProcess) -> None:
    from clickhouse_connect.driver.exceptions import DatabaseError

    c = client(server)
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE"):
        c.query("SELECT * FROM no_such_table")
    status, headers, body = request(server.port, "POST", body=b"SELECT * FROM no_such_table")
    assert status == 404
    assert headers["x-clickhouse-exception-code"] == "60"
    assert body.startswith(b"Code: 60. DB::Exception:") and b"(UNKNOWN_TABLE)" in body
    status, headers, body = request(server.port, "POST", body=b"SELEC 1")
    assert (status, headers["x-clickhouse-exception-code"]) == (400, "62")
    status, headers, body = request(server.port, "POST", {"query": "SELECT {n:UInt8}", "param_n": "not a number"})
    assert status == 400 and headers["x-clickhouse-exception-code"] == "457"
    status, headers, _ = request(server.port, "POST", {"query": "SELECT 1", "no_such_setting": "1"})
    assert (status, headers["x-clickhouse-exception-code"]) == (404, "115")
    status, headers, _ = request(server.port, "GET", {"query": "CREATE TABLE ro (a UInt8) ENGINE = Memory"})
    assert status == 403 and headers["x-clickhouse-exception-code"] == "164"  # GET is readonly, as on ClickHouse


def test_raw_http_query_forms_and_headers(server: ServeProcess) -> None:
    status, headers, body = request(server.port, "GET", path="/ping")
    assert (status, body) == (200, b"Ok.\n")
    assert request(server.port, "GET")[2] == b"Ok.\n"

    query_id = str(uuid.uuid4())
    status, headers, body = request(server.port, "GET", {"query": "SELECT 1 + {a:UInt8}", "param_a": "41", "query_id": query_id})
    assert (status, body) == (200, b"42\n")
    assert headers["x-clickhouse-query-id"] == query_id
    assert headers["x-clickhouse-format"] == "TabSeparated"
    assert headers["x-clickhouse-timezone"]
    assert headers["x-clickhouse-server-display-name"]
    summary = json.loads(headers["x-clickhouse-summary"])
    assert {"read_rows", "written_rows", "elapsed_ns"} <= set(summary)

    status, headers, body = request(server.port, "POST", {"default_format": "JSONEachRow"}, body=b"SELECT 7 AS x")
    assert (status, json.loads(body), headers["x-clickhouse-format"]) == (200, {"x": 7}, "JSONEachRow")
    status, headers, body = request(server.port, "POST", {"default_format": "JSONEachRow"}, body=b"SELECT 7 AS x FORMAT CSV")
    assert (body, headers["x-clickhouse-format"]) == (b"7\n", "CSV")
    # the query parameter and the body join into one statement
    assert request(server.port, "POST", {"query": "SELECT"}, body=b"8")[2] == b"8\n"
    # settings as URL parameters reach the engine
    assert request(server.port, "POST", {"max_block_size": "1234"}, body=b"SELECT getSetting('max_block_size')")[2] == b"1234\n"


def test_raw_inserts_plain_chunked_and_query_in_body(server: ServeProcess) -> None:
    request(server.port, "POST", body=b"CREATE TABLE raw (a UInt32, s String) ENGINE = MergeTree ORDER BY a")
    # data in the body, statement in the URL
    assert request(server.port, "POST", {"query": "INSERT INTO raw FORMAT CSV"}, body=b"1,one\n2,two\n")[0] == 200
    # statement and data both in the body
    assert request(server.port, "POST", body=b"INSERT INTO raw FORMAT TSV\n3\tthree\n")[0] == 200
    # VALUES inserts are ordinary queries
    assert request(server.port, "POST", body=b"INSERT INTO raw VALUES (4, 'four')")[0] == 200

    # chunked transfer encoding, 200k rows in many small chunks
    def chunks() -> Iterator[bytes]:
        yield b"INSERT INTO raw FORMAT CSV\n"
        for start in range(100, 200_100, 1000):
            yield "".join(f"{i},v{i}\n" for i in range(start, start + 1000)).encode()

    status, headers, _ = request(server.port, "POST", body=chunks())
    assert status == 200
    assert json.loads(headers["x-clickhouse-summary"])["written_rows"] == "200000"
    # RowBinary with ClickHouse's compressed framing (decompress=1), as clickhouse-go sends it
    row_binary = b"".join(struct.pack("<I", i) + bytes([2]) + b"rb" for i in range(300_000, 300_010))
    status, _, _ = request(server.port, "POST", {"query": "INSERT INTO raw FORMAT RowBinary", "decompress": "1"}, body=ch_compress(row_binary))
    assert status == 200
    status, _, body = request(server.port, "POST", {"compress": "1"}, body=b"SELECT count(), countIf(s = 'rb') FROM raw")
    assert b"".join(ch_decompress_stream([body])) == b"200014\t10\n"
    # a failing insert answers an error and commits nothing
    status, headers, _ = request(server.port, "POST", {"query": "INSERT INTO raw FORMAT CSV"}, body=b"5,five\nnot-a-number,x\n")
    assert status == 400 or status == 500
    assert "x-clickhouse-exception-code" in headers
    assert request(server.port, "POST", body=b"SELECT count() FROM raw WHERE a = 5")[2] == b"0\n"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _uvarint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def test_native_output_for_client_protocol_revision(server: ServeProcess) -> None:
    """clickhouse-go asks for Native at its protocol revision: each block starts with BlockInfo
    and each column carries a custom-serialization flag. The expected stream is assembled
    independently from one-column, one-block queries."""
    columns = {
        "n": "number",
        "s": "toString(number)",
        "m": "map(toLowCardinality(toString(number % 3)), 'v')",
        "lc": "[toLowCardinality('a'), toLowCardinality(toString(number % 7))]",
        "lcn": "toLowCardinality(if(number % 4 = 0, NULL, toNullable(toString(number % 5))))",
        "nn": "if(number % 2, NULL, number)",
        "t": "(number, 'x')",
        "ts": "toDateTime64(number, 9)",
        "am": "[map('k', toString(number))]",
        "fs": "toFixedString('ab', 2)",
        "u": "toUUID('00000000-0000-0000-0000-000000000001')",
        "e": "CAST('a', 'Enum8(\\'a\\' = 1, \\'b\\' = 2)')",
        "d": "toDecimal64(number, 4)",
    }
    select = ", ".join(f"{expr} AS {name}" for name, expr in columns.items())
    full = f"SELECT {select} FROM numbers(0, 2500) SETTINGS max_block_size = 1000"
    framed = request(server.port, "POST", {"default_format": "Native", "client_protocol_version": "54460"}, body=full.encode())
    assert framed[0] == 200, framed[2]
    expected = bytearray()
    for offset, count in ((0, 1000), (1000, 1000), (2000, 500)):
        expected += b"\x01\x00\x02\xff\xff\xff\xff\x00" + _uvarint(len(columns)) + _uvarint(count)
        for name, expr in columns.items():
            one = request(
                server.port, "POST", {"default_format": "Native"}, body=f"SELECT {expr} AS {name} FROM numbers({offset}, {count})".encode()
            )[2]
            ncols, pos = _varint(one, 0)
            nrows, pos = _varint(one, pos)
            assert (ncols, nrows) == (1, count)
            header_start = pos
            size, pos = _varint(one, pos)
            pos += size  # name
            size, pos = _varint(one, pos)
            pos += size  # type
            expected += one[header_start:pos] + b"\x00" + one[pos:]
    assert framed[2] == bytes(expected)
    # without client_protocol_version the stream is chDB's own revision-0 Native
    plain = request(server.port, "POST", {"default_format": "Native"}, body=full.encode())[2]
    assert plain != framed[2] and native_for_revision(plain, 54460) == framed[2]


# ------------------------------------------------------------------------------------
# Sessions, auth
# ------------------------------------------------------------------------------------


def test_sessions_keep_set_and_temporary_tables_and_lock(server: ServeProcess) -> None:
    sid = {"session_id": str(uuid.uuid4())}
    assert request(server.port, "POST", sid, body=b"SET max_block_size = 777")[0] == 200
    assert request(server.port, "POST", sid, body=b"CREATE TEMPORARY TABLE tmp (a UInt8)")[0] == 200
    assert request(server.port, "POST", sid, body=b"INSERT INTO tmp VALUES (1)")[0] == 200
    assert request(server.port, "POST", sid, body=b"SELECT getSetting('max_block_size'), (SELECT count() FROM tmp)")[2] == b"777\t1\n"
    # a per-request setting does not stick to the session
    assert request(server.port, "POST", {**sid, "max_block_size": "5"}, body=b"SELECT getSetting('max_block_size')")[2] == b"5\n"
    assert request(server.port, "POST", sid, body=b"SELECT getSetting('max_block_size')")[2] == b"777\n"
    # no session: nothing leaks between requests
    assert request(server.port, "POST", body=b"SELECT getSetting('max_block_size')")[2] != b"777\n"
    # a session in use by another request answers SESSION_IS_LOCKED, like ClickHouse
    slow = threading.Thread(target=request, args=(server.port, "POST", sid, b"SELECT sleep(1)"))
    slow.start()
    time.sleep(0.3)
    status, headers, _ = request(server.port, "POST", sid, body=b"SELECT 1")
    slow.join()
    assert headers.get("x-clickhouse-exception-code") == "373" and status == 500
    status, headers, _ = request(server.port, "POST", {"session_id": "nope", "session_check": "1"}, body=b"SELECT 1")
    assert headers.get("x-clickhouse-exception-code") == "372"


def test_basic_auth_is_checked_against_configured_credentials(tmp_path: Path) -> None:
    from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

    proc = ServeProcess(tmp_path / "db", env={"OTEL_DECISIONS_SERVE_USER": "alice", "OTEL_DECISIONS_SERVE_PASSWORD": "s3cr3t"}).start()
    try:
        status, headers, body = request(proc.port, "POST", body=b"SELECT 1")
        assert (status, headers["x-clickhouse-exception-code"]) == (401, "516")
        assert b"Authentication failed" in body
        bad = base64.b64encode(b"alice:wrong").decode()
        assert request(proc.port, "POST", body=b"SELECT 1", headers={"Authorization": f"Basic {bad}"})[0] == 401
        good = base64.b64encode(b"alice:s3cr3t").decode()
        assert request(proc.port, "POST", body=b"SELECT 1", headers={"Authorization": f"Basic {good}"})[2] == b"1\n"
        assert request(proc.port, "POST", body=b"SELECT 2", headers={"X-ClickHouse-User": "alice", "X-ClickHouse-Key": "s3cr3t"})[2] == b"2\n"
        assert request(proc.port, "POST", {"user": "alice", "password": "s3cr3t"}, body=b"SELECT 3")[2] == b"3\n"
        assert request(proc.port, "GET", path="/ping")[0] == 200  # health checks need no credentials, as on ClickHouse
        assert client(proc, username="alice", password="s3cr3t").command("SELECT 4") == 4
        with pytest.raises((DatabaseError, OperationalError)):
            client(proc, username="alice", password="nope")
    finally:
        assert proc.stop() == 0


# ------------------------------------------------------------------------------------
# Graceful shutdown: in-flight inserts finish, nothing acknowledged is lost
# ------------------------------------------------------------------------------------


def test_sigterm_finishes_in_flight_inserts_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    proc = ServeProcess(path).start()
    client(proc).command("CREATE TABLE g (batch String, i UInt32, payload String) ENGINE = MergeTree ORDER BY (batch, i)")
    acked: dict[str, tuple[float, float, int]] = {}
    failed: list[str] = []
    lock = threading.Lock()

    def writer(worker: int, rows: int) -> None:
        c = client(proc, compress="lz4")
        seq = 0
        while True:
            batch = f"w{worker}-{seq}"
            data = [[batch, i, "x" * 64] for i in range(rows)]
            started = time.monotonic()
            try:
                c.insert("g", data, column_names=["batch", "i", "payload"])
            except Exception as exc:  # the server is gone: this batch was not acknowledged
                with lock:
                    failed.append(f"{batch}: {type(exc).__name__}")
                return
            with lock:
                acked[batch] = (started, time.monotonic(), rows)
            seq += 1

    # two writers of big batches (hundreds of ms each) and two of small ones
    threads = [threading.Thread(target=writer, args=(w, 200_000 if w < 2 else 500)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(2.0)
    signalled = time.monotonic()
    proc.proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
    for t in threads:
        t.join(timeout=120)
    assert proc.proc.wait(timeout=60) == 0, "".join(proc.output)  # type: ignore[union-attr]
    assert any("stopped (clean)" in line for line in proc.output), "".join(proc.output)
    assert len(failed) == 4  # every writer ended on a refused request
    in_flight = [b for b, (start, end, _) in acked.items() if start < signalled < end]
    assert in_flight, "no insert was in flight at SIGTERM; the test proves nothing"

    again = ServeProcess(path).start()
    try:
        rows = client(again).query("SELECT batch, count() FROM g GROUP BY batch").result_rows
    finally:
        assert again.stop() == 0
    stored = dict(rows)
    assert stored == {batch: n for batch, (_, _, n) in acked.items()}


def test_short_load_run_loses_no_row() -> None:
    """The 60 s load test's script, bounded to a few seconds (numbers go to the benchmark, not here)."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parent.parent / "benchmarks" / "serve_load.py"),
         "--duration", "5", "--baseline-duration", "0", "--writers", "3", "--readers", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    served = json.loads(done.stdout.splitlines()[0])
    assert served["rows_lost"] == 0 and served["insert_errors"] == 0 and served["query_errors"] == 0
    assert served["insert_rows_per_s"] > 0 and served["queries"] > 0
    assert "rows lost: 0" in done.stdout
