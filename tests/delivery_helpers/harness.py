"""Process plumbing for the delivery fault-injection tests and the benchmark.

Example::

    with Receiver(tmp_path / "store.sqlite") as receiver:
        env = delivery_env(tmp_path, receiver.port)
        run_recorder(env, "--count", "100", "--returned", str(tmp_path / "ids"), "--flush-s", "10")
        assert receiver.stats()["distinct"] == 100
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """The OTLP/HTTP receiver process (``otlp_receiver.py``) on a port, storing into SQLite."""

    def __init__(self, db: Path, port: int | None = None, delay_s: float = 0.0) -> None:
        self.db = db
        self.port = port or free_port()
        self.delay_s = delay_s
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Receiver:
        self.process = subprocess.Popen(
            [PYTHON, "-m", "tests.delivery_helpers.otlp_receiver", "--port", str(self.port), "--db", str(self.db),
             "--delay", str(self.delay_s)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.strip() == "ready", f"receiver did not start: {line!r}"
        return self

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> dict[str, int]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/stats", timeout=10) as response:
            return json.loads(response.read())

    def wait_for(self, distinct: int, timeout_s: float = 60.0) -> dict[str, int]:
        deadline = time.monotonic() + timeout_s
        stats = self.stats()
        while stats["distinct"] < distinct and time.monotonic() < deadline:
            time.sleep(0.1)
            stats = self.stats()
        return stats

    def stored_counts(self) -> dict[str, int]:
        """decision id -> number of times the store received it."""
        with sqlite3.connect(self.db) as db:
            return dict(db.execute("SELECT decision_id, count(*) FROM spans GROUP BY decision_id").fetchall())


def delivery_env(tmp: Path, port: int, **settings: Any) -> dict[str, str]:
    """Environment of a process that records/drains with the OTLP exporter to 127.0.0.1:port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_DECISIONS_", "OTEL_EXPORTER_OTLP"))}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "OTEL_DECISIONS_DATA_DIR": str(tmp / "data"),
            "OTEL_DECISIONS_EXPORTERS": "otlp",
            "OTEL_DECISIONS_RETRY_INITIAL_BACKOFF_S": "0.1",
            "OTEL_DECISIONS_RETRY_MAX_BACKOFF_S": "0.5",
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"http://127.0.0.1:{port}/v1/traces",
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "3",
        }
    )
    for key, value in settings.items():
        env[f"OTEL_DECISIONS_{key.upper()}"] = str(value)
    return env


def start_recorder(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [PYTHON, "-m", "tests.delivery_helpers.recorder", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_recorder(env: dict[str, str], *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "tests.delivery_helpers.recorder", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def run_cli(env: dict[str, str], *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
    """``otel-decisions ARGS`` in a new process."""
    return subprocess.run(
        [PYTHON, "-c", "from otel_decisions.cli import main; main()", *args],
        cwd=REPO,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def read_ids(path: Path) -> list[str]:
    if not path.exists():
        return []
    lines = path.read_text().split("\n")
    return [line for line in lines[:-1] if line]  # a line cut by a kill has no newline yet
