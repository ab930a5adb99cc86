"""Helpers for the e2e tests: free ports, managed processes, Jaeger queries, the flow app runner.

Example::

    from e2e_harness import free_port, wait_until
    port = free_port()
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO_ROOT / "collector_config"
BIN_DIR = Path(os.environ.get("OTEL_DECISIONS_BIN_DIR", REPO_ROOT / ".cache" / "bin"))
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-binaries"
FLOW_APP = Path(__file__).with_name("flow_app.py")


# --- helpers -----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 5.0) -> tuple[int, bytes, dict[str, str]]:
    """GET *url*: (status, body, headers); HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers or {})


def http_post_json(url: str, document: Any, timeout: float = 10.0) -> tuple[int, bytes]:
    data = json.dumps(document).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:  # noqa: S310 - loopback only
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.2, what: str = "condition") -> Any:
    """Poll *predicate* until it returns a truthy value (returned) or *timeout* passes (AssertionError)."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
        except (OSError, ValueError) as exc:  # connection refused, bad JSON while starting
            last_exc = exc
            value = None
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


@dataclass
class ManagedProcess:
    """A real binary started with a fixed argv/env; ``start``/``stop`` may be called repeatedly."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    ready_url: str
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        assert self.proc is None or self.proc.poll() is not None, f"{self.name} already running"
        log = self.log_path.open("ab")
        log.write(f"\n==== start {' '.join(self.argv)}\n".encode())
        log.flush()
        self.proc = subprocess.Popen(  # noqa: S603 - our own binaries
            self.argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT, cwd=self.log_path.parent
        )
        log.close()

        def ready() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"{self.name} exited with {self.proc.returncode} on start:\n{self.log_tail()}")
            status, _, _ = http_get(self.ready_url, timeout=1.0)
            return status == 200

        wait_until(ready, timeout, what=f"{self.name} at {self.ready_url}")

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait(5)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass(frozen=True)
class Binaries:
    collector: Path
    jaeger: Path
    build_output: str


def jaeger_query_url(jaeger: ManagedProcess) -> str:
    return f"http://127.0.0.1:{jaeger.ports['query_http']}"


def jaeger_trace(jaeger: ManagedProcess, trace_id: str) -> dict[str, Any] | None:
    """The trace from Jaeger's HTTP API (``/api/traces/{id}``), or None while it is not there."""
    status, body, _ = http_get(f"{jaeger_query_url(jaeger)}/api/traces/{trace_id}")
    if status != 200:
        return None
    data = json.loads(body).get("data") or []
    return data[0] if data else None


def _run_types(trace: dict[str, Any]) -> set[str]:
    """What a trace holds: 'flow' / 'task' (prefect.run.type tag) and 'decision' spans."""
    kinds: set[str] = set()
    for span in trace["spans"]:
        tags = {tag["key"]: tag["value"] for tag in span.get("tags") or []}
        if "prefect.run.type" in tags:
            kinds.add(str(tags["prefect.run.type"]))
        if span["operationName"].startswith("decision "):
            kinds.add("decision")
    return kinds


def wait_for_jaeger_trace(
    jaeger: ManagedProcess,
    trace_id: str,
    min_spans: int,
    timeout: float = 30.0,
    require: tuple[str, ...] = ("flow", "task", "decision"),
) -> dict[str, Any]:
    """The trace once it has *min_spans* spans and a span of each kind in *require*.

    Spans arrive by different paths (durable spool vs batch processor), so a count alone can be
    reached before the kind a test asserts on has arrived.
    """

    def have() -> dict[str, Any] | None:
        trace = jaeger_trace(jaeger, trace_id)
        if trace is None or len(trace["spans"]) < min_spans or not set(require) <= _run_types(trace):
            return None
        return trace

    return wait_until(have, timeout, interval=0.3, what=f"trace {trace_id} with >= {min_spans} spans "
                      f"including {', '.join(require)} in Jaeger")


def collector_metric(collector: ManagedProcess, prefix: str) -> float:
    """Sum of the collector's own Prometheus metric samples whose line starts with *prefix*."""
    status, body, _ = http_get(f"http://127.0.0.1:{collector.ports['metrics']}/metrics")
    if status != 200:
        return 0.0
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(prefix):
            total += float(line.rsplit(" ", 1)[1])
    return total


# --- the instrumented application ----------------------------------------------------------------


def run_flow_app(tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 240.0) -> dict[str, Any]:
    """Run tests/e2e/flow_app.py in a fresh interpreter; return the JSON it prints last."""
    app_dir = tmp_path / f"app-{time.monotonic_ns()}"
    app_dir.mkdir()
    full_env = {
        **os.environ,
        "PREFECT_HOME": str(app_dir / "prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_LOGGING_TO_API_ENABLED": "false",
        "OTEL_DECISIONS_DATA_DIR": str(app_dir / "data"),
        "OTEL_DECISIONS_HMAC_KEY": "e2e-test-key-0123456789abcdef",
        **env,
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, str(FLOW_APP), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=app_dir,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"flow_app.py failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    last = [line for line in result.stdout.splitlines() if line.startswith("{")][-1]
    report: dict[str, Any] = json.loads(last)
    if report.get("flushed") is not True:
        raise AssertionError(
            "flow_app.py: otel_decisions.force_flush() returned False (records not delivered):\n" + result.stderr[-5000:]
        )
    return report
