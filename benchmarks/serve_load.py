"""Load test of ``otel-decisions serve`` on loopback: concurrent inserts and queries.

Starts ``python -m otel_decisions.serve`` on a fresh database at a free loopback port,
then runs writer threads (clickhouse-connect Native inserts of span-shaped rows: Map,
DateTime64, strings) and reader threads (an aggregate over the growing table) for a
bounded time and request count. It prints the insert rate, the p50/p99 query latency and
checks that every acknowledged row is stored (exit 1 if any is lost).

The baseline, measured in the same run, is the same workload on the embedded path
(clickhouse-connect's ``chdb://`` client, same thread counts, in this process), so the
ratios say what the HTTP hop costs.

Example::

    .venv/bin/python benchmarks/serve_load.py                      # 60 s, the issue's run
    .venv/bin/python benchmarks/serve_load.py --duration 5 --baseline-duration 0
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

TABLE_DDL = (
    "CREATE TABLE load_spans (batch String, i UInt32, ts DateTime64(9), service LowCardinality(String), "
    "name String, attrs Map(LowCardinality(String), String), duration UInt64) "
    "ENGINE = MergeTree ORDER BY (service, ts)"
)
COLUMNS = ["batch", "i", "ts", "service", "name", "attrs", "duration"]
QUERY = (
    "SELECT service, count(), quantile(0.99)(duration), uniqExact(attrs['decision.outcome']) "
    "FROM load_spans WHERE ts >= {since:DateTime64(9)} GROUP BY service ORDER BY service"
)


@dataclass
class Stats:
    acked_rows: int = 0
    acked_batches: dict[str, int] = field(default_factory=dict)
    insert_requests: int = 0
    insert_errors: list[str] = field(default_factory=list)
    query_latencies_ms: list[float] = field(default_factory=list)
    query_errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _rows(batch: str, n: int, base: datetime) -> list[list[Any]]:
    return [
        [
            batch,
            i,
            base + timedelta(microseconds=i),
            f"svc-{i % 4}",
            "decision credit.approval",
            {"decision.outcome": ("approve", "deny", "refer")[i % 3], "decision.id": f"{batch}-{i}"},
            1000 + i,
        ]
        for i in range(n)
    ]


def run_workload(
    make_client: Any, duration_s: float, writers: int, readers: int, batch_rows: int, max_requests: int
) -> tuple[Stats, float]:
    """Run writers and readers against clients from *make_client* until time or count runs out."""
    stats = Stats()
    stop_at = time.monotonic() + duration_s
    budget = threading.Semaphore(max_requests)
    since = datetime(2026, 1, 1, tzinfo=timezone.utc)

    def writer(worker: int) -> None:
        client = make_client()
        seq = 0
        while time.monotonic() < stop_at and budget.acquire(blocking=False):
            batch = f"w{worker}-{seq}"
            try:
                client.insert("load_spans", _rows(batch, batch_rows, since), column_names=COLUMNS)
            except Exception as exc:
                with stats.lock:
                    stats.insert_errors.append(f"{batch}: {exc}")
                continue
            with stats.lock:
                stats.acked_rows += batch_rows
                stats.acked_batches[batch] = batch_rows
                stats.insert_requests += 1
            seq += 1

    def reader() -> None:
        client = make_client()
        while time.monotonic() < stop_at and budget.acquire(blocking=False):
            started = time.perf_counter()
            try:
                client.query(QUERY, parameters={"since": since})
            except Exception as exc:
                with stats.lock:
                    stats.query_errors.append(str(exc))
                continue
            with stats.lock:
                stats.query_latencies_ms.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(writers)]
    threads += [threading.Thread(target=reader) for _ in range(readers)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return stats, time.monotonic() - started


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _summary(label: str, stats: Stats, elapsed: float) -> dict[str, Any]:
    return {
        "path": label,
        "seconds": round(elapsed, 2),
        "insert_rows_per_s": round(stats.acked_rows / elapsed),
        "insert_requests_per_s": round(stats.insert_requests / elapsed, 1),
        "queries": len(stats.query_latencies_ms),
        "query_p50_ms": round(_percentile(stats.query_latencies_ms, 0.50), 2),
        "query_p99_ms": round(_percentile(stats.query_latencies_ms, 0.99), 2),
        "query_mean_ms": round(statistics.fmean(stats.query_latencies_ms), 2) if stats.query_latencies_ms else None,
        "insert_errors": len(stats.insert_errors),
        "query_errors": len(stats.query_errors),
    }


def _stored(client: Any) -> dict[str, int]:
    return dict(client.query("SELECT batch, count() FROM load_spans GROUP BY batch").result_rows)


def start_server(path: Path) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "otel_decisions.serve", "--dsn", f"chdb://{path}", "--host", "127.0.0.1", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        match = re.search(r"serving ClickHouse HTTP on \S+:(\d+)", line)
        if match:
            threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()  # type: ignore[union-attr]
            return proc, int(match.group(1))
        if not line:
            break
    proc.kill()
    raise SystemExit("serve did not start")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load through serve")
    parser.add_argument("--baseline-duration", type=float, default=20.0, help="seconds on the embedded path (0: skip)")
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--readers", type=int, default=2)
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--max-requests", type=int, default=200_000, help="hard cap on requests per run")
    args = parser.parse_args(argv)

    import clickhouse_connect

    work = Path(tempfile.mkdtemp(prefix="serve-load-"))
    results: list[dict[str, Any]] = []
    lost_total = 0

    proc, port = start_server(work / "served")
    try:

        def http_client() -> Any:
            return clickhouse_connect.get_client(host="127.0.0.1", port=port, compress="lz4")

        http_client().command(TABLE_DDL)
        stats, elapsed = run_workload(http_client, args.duration, args.writers, args.readers, args.batch_rows, args.max_requests)
        stored = _stored(http_client())
        lost = sum(n - stored.get(batch, 0) for batch, n in stats.acked_batches.items())
        lost_total += lost
        results.append({**_summary("serve (HTTP, loopback)", stats, elapsed), "rows_lost": lost})
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)

    if args.baseline_duration > 0:
        dsn = f"chdb://{work / 'embedded'}"

        def embedded_client() -> Any:
            return clickhouse_connect.get_client(dsn=dsn)

        embedded_client().command(TABLE_DDL)
        stats, elapsed = run_workload(
            embedded_client, args.baseline_duration, args.writers, args.readers, args.batch_rows, args.max_requests
        )
        stored = _stored(embedded_client())
        lost = sum(n - stored.get(batch, 0) for batch, n in stats.acked_batches.items())
        lost_total += lost
        results.append({**_summary("embedded chdb:// (baseline)", stats, elapsed), "rows_lost": lost})

    for row in results:
        print(json.dumps(row))
    if len(results) == 2:
        served, base = results
        print(
            f"serve/embedded: insert rate x{served['insert_rows_per_s'] / max(base['insert_rows_per_s'], 1):.2f}, "
            f"query p50 x{served['query_p50_ms'] / base['query_p50_ms']:.2f}, "
            f"query p99 x{served['query_p99_ms'] / base['query_p99_ms']:.2f}"
        )
    print(f"rows lost: {lost_total}")
    return 1 if lost_total else 0


if __name__ == "__main__":
    sys.exit(main())
