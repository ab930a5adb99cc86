"""A recording process for the multi-process tests: configure otel-decisions, record N decisions, exit.

``python tests/apps/record_decisions.py DSN DATA_DIR N [--type T] [--pace-s S]``: configures the
ClickHouse exporter on DSN (the embedded database: this process is a client of its owner),
records N decisions with ``record_decision`` (no Prefect), prints ``ID <decision id>`` for each
one whose call returned, then ``DONE <n> <seconds>``, and exits normally (otel-decisions' atexit
shutdown delivers what is pending).
"""

from __future__ import annotations

import argparse
import sys
import time

import otel_decisions


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("data_dir")
    parser.add_argument("n", type=int)
    parser.add_argument("--type", default="mp.recorder")
    parser.add_argument("--pace-s", type=float, default=0.0, help="sleep between decisions")
    parser.add_argument("--hmac-key", default="multiprocess-test-hmac-key-0123456789")
    args = parser.parse_args()
    started = time.monotonic()
    otel_decisions.configure(
        exporters=["clickhouse"],
        dsn=args.dsn,
        data_dir=args.data_dir,
        hmac_key=args.hmac_key,
        service_name="record-decisions",
    )
    for i in range(args.n):
        decision = otel_decisions.record_decision(
            type=args.type,
            outcome="approve" if i % 4 else "deny",
            confidence=0.6 + (i % 40) / 100,
            reasons=["income verified", "low utilisation"],
            inputs={"applicant": i},
        )
        sys.stdout.write(f"ID {decision.id}\n")
        if args.pace_s:
            time.sleep(args.pace_s)
    sys.stdout.write(f"DONE {args.n} {time.monotonic() - started:.3f}\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
