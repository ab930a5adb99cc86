"""`otel-decisions serve` answers database clients only: no files, URLs or programs, no browsers, no foreign Host."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from otel_decisions.serve import reject_outside_world

from .test_serve import ServeProcess, request


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    proc = ServeProcess(tmp_path_factory.mktemp("serve-security") / "chdb").start()
    yield proc
    assert proc.stop() == 0, "".join(proc.output)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT * FROM `file`('/etc/passwd', LineAsString)",
        "SELECT * FROM file/* hidden */('/etc/passwd')",
        "select * from URL('http://127.0.0.1:1/', CSV)",
        "INSERT INTO FUNCTION file('/tmp/x.csv', CSV) SELECT 1",
        "SELECT 1 INTO OUTFILE '/tmp/out.csv'",
        "CREATE TABLE t (x String) ENGINE = File(CSV)",
        "SELECT * FROM executable('id', 'TSV', 'x String')",
        "SELECT * FROM remote('127.0.0.1:9000', system.one)",
        # a comment marker inside a string literal must not hide what follows
        "SELECT '--' AS a, * FROM file('/etc/passwd', 'LineAsString')",
        "SELECT '/*', * FROM file('/etc/passwd', 'LineAsString') -- */",
        "SELECT * FROM \"file\"('/etc/passwd', 'LineAsString')",
        "SELECT * FROM icebergS3('http://127.0.0.1:1/x')",
        "CREATE DICTIONARY d (x UInt8) PRIMARY KEY x SOURCE(HTTP(url 'http://127.0.0.1:1/' format 'TSV')) LAYOUT(FLAT()) LIFETIME(0)",
        "INSERT INTO t FROM INFILE '/etc/passwd' FORMAT LineAsString",
        "CREATE TABLE k (x String) ENGINE = Kafka",
    ],
)
def test_outside_world_sql_is_refused_by_the_server(server, sql):
    status, headers, body = request(server.port, "POST", body=sql.encode())
    assert status == 403, body
    assert headers.get("x-clickhouse-exception-code") == "497"
    assert b"root:" not in body


def test_ordinary_sql_mentioning_such_words_is_fine():
    reject_outside_world("SELECT 'profile(' AS x, filename, urls FROM decisions WHERE rationale LIKE '%file%'")
    reject_outside_world("SELECT count() FROM otel_traces -- file('/etc/passwd') in a comment is harmless")
    reject_outside_world("SELECT count() FROM decisions WHERE rationale LIKE '%url(%' AND reasons[1] != 'file('")
    reject_outside_world("SELECT deltaSum(confidence), 'it''s -- fine' FROM decisions")


def test_browsers_and_foreign_hosts_are_refused(server):
    status, headers, _ = request(server.port, "POST", body=b"SELECT 1", headers={"Origin": "http://evil.example"})
    assert status == 403 and headers.get("x-clickhouse-exception-code") == "497"
    status, _, _ = request(server.port, "GET", params={"query": "SELECT 1"}, headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _, body = request(server.port, "POST", body=b"SELECT 1", headers={"Host": "rebind.evil.example:8123"})
    assert status == 403 and b"not this machine" in body
    status, _, body = request(server.port, "POST", body=b"SELECT 1", headers={"Host": f"localhost:{server.port}"})
    assert status == 200 and body.strip() == b"1"


def test_a_get_never_writes_even_if_the_url_says_readonly_0(server):
    request(server.port, "POST", body=b"CREATE TABLE IF NOT EXISTS sec_t (x UInt8) ENGINE = MergeTree ORDER BY x")
    status, _, body = request(server.port, "GET", params={"query": "INSERT INTO sec_t VALUES (1)", "readonly": "0"})
    assert status != 200, body
    status, _, body = request(server.port, "POST", body=b"SELECT count() FROM sec_t")
    assert status == 200 and body.strip() == b"0"
