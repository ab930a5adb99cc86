"""Fixtures that run the real OpenTelemetry Collector (``otelcol-decisions``) and Jaeger v2.

The binaries are built by ``scripts/build-binaries`` into ``.cache/bin`` (cached: a second run
costs nothing). When Go is missing or the build fails, every e2e test is skipped with the reason.
Each process gets free loopback ports, logs to a file under the test's tmp dir, and is stopped
(SIGTERM, then SIGKILL) after the test.

Example::

    def test_x(jaeger, collector_factory):
        collector = collector_factory("otelcol-e2e.yaml", jaeger=jaeger)
        ...
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from e2e_harness import (  # noqa: E402
    BIN_DIR,
    BUILD_SCRIPT,
    CONFIG_DIR,
    Binaries,
    ManagedProcess,
    free_port,
)


# --- binaries --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def binaries() -> Binaries:
    """Build (or reuse) the collector and Jaeger; skip the e2e tests with the reason if impossible."""
    collector, jaeger = BIN_DIR / "otelcol-decisions", BIN_DIR / "jaeger"
    if shutil.which("go") is None:
        if collector.exists() and jaeger.exists():  # built earlier (or copied in): use as they are
            return Binaries(collector, jaeger, "go not on PATH; using the binaries already in " + str(BIN_DIR))
        pytest.skip(
            "e2e: Go is not installed, so scripts/build-binaries cannot build otelcol-decisions and jaeger "
            f"into {BIN_DIR}; install Go >= 1.25 or put both binaries there"
        )
    env = {**os.environ, "OTEL_DECISIONS_BIN_DIR": str(BIN_DIR)}
    result = subprocess.run(  # noqa: S603
        ["bash", str(BUILD_SCRIPT)], env=env, capture_output=True, text=True, timeout=3600, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.skip(f"e2e: scripts/build-binaries failed (exit {result.returncode}):\n{output[-3000:]}")
    sys.stderr.write(f"\n[e2e] {result.stdout.strip()}\n")
    return Binaries(collector, jaeger, output)


# --- Jaeger --------------------------------------------------------------------------------------


@pytest.fixture()
def jaeger(binaries: Binaries, tmp_path: Path) -> Iterator[ManagedProcess]:
    """Jaeger v2 with in-memory storage on free loopback ports (OTLP gRPC/HTTP, query HTTP)."""
    ports = {name: free_port() for name in ("otlp_grpc", "otlp_http", "query_http", "query_grpc", "metrics")}
    env = {
        "JAEGER_OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['otlp_grpc']}",
        "JAEGER_OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['otlp_http']}",
        "JAEGER_QUERY_HTTP_ENDPOINT": f"127.0.0.1:{ports['query_http']}",
        "JAEGER_QUERY_GRPC_ENDPOINT": f"127.0.0.1:{ports['query_grpc']}",
        "JAEGER_METRICS_PORT": str(ports["metrics"]),
    }
    process = ManagedProcess(
        name="jaeger",
        argv=[str(binaries.jaeger), "--config", str(CONFIG_DIR / "jaeger-e2e.yaml")],
        env=env,
        log_path=tmp_path / "jaeger.log",
        ready_url=f"http://127.0.0.1:{ports['query_http']}/api/services",
        ports=ports,
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


# --- collector -----------------------------------------------------------------------------------


@pytest.fixture()
def collector_factory(binaries: Binaries, tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Start ``otelcol-decisions --config collector_config/<name>`` on free loopback ports."""
    started: list[ManagedProcess] = []

    def start(config: str, *, jaeger: ManagedProcess | None = None, extra_env: dict[str, str] | None = None) -> ManagedProcess:
        ports = {name: free_port() for name in ("otlp_grpc", "otlp_http", "health", "metrics")}
        workdir = tmp_path / f"collector-{len(started)}"
        workdir.mkdir()
        env = {
            "OTLP_GRPC_ENDPOINT": f"127.0.0.1:{ports['otlp_grpc']}",
            "OTLP_HTTP_ENDPOINT": f"127.0.0.1:{ports['otlp_http']}",
            "HEALTH_CHECK_ENDPOINT": f"127.0.0.1:{ports['health']}",
            "OTELCOL_METRICS_HOST": "127.0.0.1",
            "OTELCOL_METRICS_PORT": str(ports["metrics"]),
            "OTELCOL_STORAGE_DIR": str(workdir / "file_storage"),
            "OTELCOL_FILE_EXPORT_PATH": str(workdir / "received.jsonl"),
        }
        if jaeger is not None:
            env["JAEGER_OTLP_GRPC_ENDPOINT"] = f"127.0.0.1:{jaeger.ports['otlp_grpc']}"
        env.update(extra_env or {})
        process = ManagedProcess(
            name=f"otelcol-decisions ({config})",
            argv=[str(binaries.collector), "--config", str(CONFIG_DIR / config)],
            env=env,
            log_path=workdir / "otelcol.log",
            ready_url=f"http://127.0.0.1:{ports['health']}/",
            ports=ports,
        )
        started.append(process)
        process.start()
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            process.stop()


