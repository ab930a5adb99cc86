"""The private chDB binding the embedded owner relies on, used bare (no otel_decisions code).

``python raw_chdb_listen.py DIR HTTP_PORT TCP_PORT``: writes ``DIR/config.xml`` with the two ports,
runs ``chdb._chdb.query("SYSTEM START LISTEN QUERIES ALL; <blocking scan>; SYSTEM STOP LISTEN
QUERIES ALL", "TSV", path=DIR/db)`` on a thread (clickhouse-local's LocalServer, whose start/stop
servers callbacks make ClickHouse's own HTTP and native TCP listeners serve while the call runs),
prints ``STARTED``, and when the blocking statement is killed prints ``ENDED <repr of the result
or error>`` and exits 0. ``tests/test_embedded_server.py::test_pinned_private_binding`` checks
that the listeners really serve: if a chDB release changes this, that test fails loudly.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

from chdb import _chdb  # imported before the chdir: its import-time probe reads ./config.xml

BLOCKING_SQL = (
    "SYSTEM START LISTEN QUERIES ALL; "
    "SELECT sleepEachRow(0.25) FROM system.numbers "
    "SETTINGS max_block_size = 1, function_sleep_max_microseconds_per_block = 0, "
    "max_execution_time = 0, log_comment = 'raw-binding-probe' FORMAT Null; "
    "SYSTEM STOP LISTEN QUERIES ALL"
)


def main() -> None:
    data_dir, http_port, tcp_port = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "config.xml").write_text(
        "<clickhouse>\n  <listen_host>127.0.0.1</listen_host>\n"
        f"  <http_port>{http_port}</http_port>\n  <tcp_port>{tcp_port}</tcp_port>\n"
        "  <keep_alive_timeout>2</keep_alive_timeout>\n  <ignore-error>1</ignore-error>\n</clickhouse>\n"
    )
    os.chdir(data_dir)  # LocalServer reads ./config.xml: the argv _chdb.query builds has no port options
    outcome: list[str] = []

    def engine() -> None:
        try:
            outcome.append(repr(_chdb.query(BLOCKING_SQL, "TSV", path=str(data_dir / "db"))))  # type: ignore[attr-defined]
        except BaseException as error:  # noqa: BLE001 - reported on stdout
            outcome.append(f"error {error!r}")

    thread = threading.Thread(target=engine, daemon=True)
    thread.start()
    print("STARTED", flush=True)
    thread.join()
    print("ENDED", " ".join((outcome[0] if outcome else "-").split())[:300], flush=True)


if __name__ == "__main__":
    main()
