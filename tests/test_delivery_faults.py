"""Fault-injection tests of durable delivery with real processes.

Each test runs the recording "flow process" (tests/delivery_helpers/recorder.py) and a real
OTLP/HTTP receiver process (the store) or chDB, injects a fault, and ends by checking that
every decision whose recording call returned is in the store exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from otel_decisions.delivery._codec import HEADER, KIND_SPAN, MAGIC, iter_frames
from tests.delivery_helpers.harness import (
    PYTHON,
    REPO,
    Receiver,
    delivery_env,
    free_port,
    read_ids,
    run_cli,
    run_recorder,
    start_recorder,
)


def assert_exactly_once(
    receiver: Receiver, returned: list[str], *, allow_redelivery: bool = True, unlogged: int = 0
) -> None:
    """Every returned id stored; nothing else stored (``unlogged``: a killed recorder may have
    spooled one decision whose id it had not yet logged)."""
    counts = receiver.stored_counts()
    missing = [i for i in returned if i not in counts]
    assert not missing, f"{len(missing)} of {len(returned)} returned decisions missing from the store"
    extra = set(counts) - set(returned)
    assert len(extra) <= unlogged, f"{len(extra)} stored decisions were never returned to a caller"
    # the store deduplicates on decision id (as ClickHouse does); without faults there is no re-delivery at all
    if not allow_redelivery:
        assert max(counts.values()) == 1


def test_endpoint_down_for_the_whole_flow_then_up(tmp_path: Path) -> None:
    port = free_port()
    env = {**delivery_env(tmp_path, port), "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT": "0.5"}
    go = tmp_path / "go"
    recorder = start_recorder(env, "--count", "2000", "--returned", str(tmp_path / "ids"), "--wait-file", str(go),
                              "--flush-s", "30")
    assert recorder.stdout is not None
    while recorder.stdout.readline().strip() != "recorded":
        assert recorder.poll() is None, recorder.stderr.read() if recorder.stderr else ""
    time.sleep(2.0)  # the shipper is failing and retrying against the closed port (0.5 s per attempt)
    with Receiver(tmp_path / "store.sqlite", port=port) as receiver:
        go.touch()
        out, err = recorder.communicate(timeout=60)
        assert recorder.returncode == 0, err
        assert "flushed" in out
        returned = read_ids(tmp_path / "ids")
        assert len(returned) == 2000
        assert_exactly_once(receiver, returned)
    status = json.loads(run_cli(env, "delivery", "status", "--json").stdout)
    assert status["pending"] == 0 and status["delivered"] == 2000 and status["retried"] > 0


def test_slow_endpoint_under_a_burst(tmp_path: Path) -> None:
    with Receiver(tmp_path / "store.sqlite", delay_s=1.0) as receiver:
        env = delivery_env(tmp_path, receiver.port, export_batch_size=1000)
        result = run_recorder(env, "--count", "4000", "--returned", str(tmp_path / "ids"), "--flush-s", "60")
        assert result.returncode == 0, result.stderr
        assert "flushed" in result.stdout
        returned = read_ids(tmp_path / "ids")
        assert len(returned) == 4000
        assert_exactly_once(receiver, returned, allow_redelivery=False)
        assert receiver.stats()["requests"] >= 4


def test_hundred_thousand_decisions_healthy_endpoint_zero_lost(tmp_path: Path) -> None:
    with Receiver(tmp_path / "store.sqlite") as receiver:
        env = delivery_env(tmp_path, receiver.port)
        result = run_recorder(env, "--count", "100000", "--returned", str(tmp_path / "ids"), "--flush-s", "120",
                              timeout_s=300)
        assert result.returncode == 0, result.stderr
        returned = read_ids(tmp_path / "ids")
        assert len(returned) == 100_000
        stats = receiver.stats()
        assert stats["distinct"] == 100_000 and stats["rows"] == 100_000, stats
        assert_exactly_once(receiver, returned, allow_redelivery=False)


def _kill_mid_run(tmp_path: Path, env: dict[str, str]) -> list[str]:
    ids = tmp_path / "ids"
    recorder = start_recorder(env, "--count", "1000000", "--returned", str(ids), "--pace-s", "0.0002")
    deadline = time.monotonic() + 60
    while len(read_ids(ids)) < 3000:
        assert recorder.poll() is None, recorder.stderr.read() if recorder.stderr else ""
        assert time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(recorder.pid, signal.SIGKILL)
    recorder.wait(10)
    assert recorder.returncode == -signal.SIGKILL
    return read_ids(ids)


def test_kill_9_mid_run_then_drain_in_a_new_process_otlp(tmp_path: Path) -> None:
    port = free_port()
    env = delivery_env(tmp_path, port)
    returned = _kill_mid_run(tmp_path, env)  # endpoint down while the flow runs: everything is on disk
    with Receiver(tmp_path / "store.sqlite", port=port) as receiver:
        result = run_cli(env, "delivery", "drain", "--json", "--timeout", "60")
        assert result.returncode == 0, result.stderr
        status = json.loads(result.stdout)
        assert status["pending"] == 0
        assert_exactly_once(receiver, returned, unlogged=1)
    assert status["delivered"] >= len(returned)


def _chdb_available() -> bool:
    try:
        import chdb  # noqa: F401

        from otel_decisions.store.exporter import ClickHouseSpanExporter  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _chdb_available(), reason="chDB or the ClickHouse exporter is not installed")
def test_kill_9_mid_run_then_drain_into_chdb(tmp_path: Path) -> None:
    """The flow process ships to chDB itself, is killed, and a new process drains the rest."""
    env = delivery_env(tmp_path, free_port(), exporters="clickhouse", export_batch_size=500)
    returned = _kill_mid_run(tmp_path, env)
    result = run_cli(env, "delivery", "drain", "--json", "--timeout", "120", timeout_s=300)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["pending"] == 0
    count = subprocess.run(
        [
            PYTHON,
            "-c",
            "import json, sys\n"
            "from otel_decisions.settings import load_settings\n"
            "from otel_decisions.store.client import get_client\n"
            "client = get_client(load_settings().resolved_dsn, role='admin')\n"
            "rows = client.query('SELECT decision_id, count() FROM decisions FINAL GROUP BY decision_id').result_rows\n"
            "print(json.dumps({str(k): v for k, v in rows}))",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert count.returncode == 0, count.stderr
    stored = json.loads(count.stdout.strip().splitlines()[-1])
    missing = [i for i in returned if i not in stored]
    assert not missing, f"{len(missing)} of {len(returned)} returned decisions missing from chDB"
    assert len(set(stored) - set(returned)) <= 1, "unexpected decisions in chDB"
    assert max(stored.values()) == 1, "a decision is stored more than once in decisions FINAL"


def test_quota_fail_policy_refuses_loudly_and_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    env = delivery_env(tmp_path, port, spool_quota_bytes=65536, quota_policy="fail")
    result = run_recorder(env, "--count", "2000", "--returned", str(tmp_path / "ids"), "--rejected",
                          str(tmp_path / "rejected"), "--stop-on-reject")
    assert result.returncode == 0, result.stderr
    returned = read_ids(tmp_path / "ids")
    rejected = read_ids(tmp_path / "rejected")
    assert rejected and 0 < len(returned) < 2000
    assert "quota_policy=fail" in result.stderr and "spool_quota_bytes" in result.stderr
    status = json.loads(run_cli(env, "delivery", "status", "--json").stdout)
    assert status["rejected"] == 1 and status["pending"] == len(returned)
    with Receiver(tmp_path / "store.sqlite", port=port) as receiver:
        drained = run_cli(env, "delivery", "drain", "--timeout", "60")
        assert drained.returncode == 0, drained.stderr
        assert_exactly_once(receiver, returned)
        assert not set(rejected) & set(receiver.stored_counts())


def test_quota_block_policy_waits_for_the_endpoint_and_loses_nothing(tmp_path: Path) -> None:
    port = free_port()
    env = delivery_env(tmp_path, port, spool_quota_bytes=65536, quota_policy="block")
    recorder = start_recorder(env, "--count", "1500", "--returned", str(tmp_path / "ids"), "--flush-s", "60")
    time.sleep(4.0)  # the spool fills up and the recording call blocks
    blocked_at = len(read_ids(tmp_path / "ids"))
    assert recorder.poll() is None and 0 < blocked_at < 1500
    with Receiver(tmp_path / "store.sqlite", port=port) as receiver:
        out, err = recorder.communicate(timeout=90)
        assert recorder.returncode == 0, err
        assert "recording blocked (quota_policy=block)" in err and "spool_quota_bytes" in err
        returned = read_ids(tmp_path / "ids")
        assert len(returned) == 1500
        assert_exactly_once(receiver, returned)


def _truncate_mid_record(segment: Path, record_index: int) -> None:
    data = segment.read_bytes()
    scan = iter_frames(data, len(MAGIC))
    spans = [(end, payload) for kind, end, payload in scan.records if kind == KIND_SPAN]
    end, payload = spans[record_index]
    start = end - len(payload) - HEADER.size
    with open(segment, "r+b") as handle:
        handle.truncate(start + HEADER.size + len(payload) // 2)


def test_truncated_segment_prefix_delivered_tail_quarantined(tmp_path: Path) -> None:
    port = free_port()
    env = delivery_env(tmp_path, port)
    result = run_recorder(env, "--count", "500", "--returned", str(tmp_path / "ids"), "--no-ship")
    assert result.returncode == 0, result.stderr
    returned = read_ids(tmp_path / "ids")
    spool = tmp_path / "data" / "spool"
    (directory,) = [p for p in spool.iterdir() if p.is_dir()]
    (segment,) = sorted(directory.glob("seg-*.spool"))
    _truncate_mid_record(segment, 300)
    with Receiver(tmp_path / "store.sqlite", port=port) as receiver:
        drained = run_cli(env, "delivery", "drain", "--json", "--timeout", "60")
        assert drained.returncode == 0, drained.stderr
        assert "quarantined" in drained.stderr and "torn tail" in drained.stderr
        status = json.loads(drained.stdout)
        assert_exactly_once(receiver, returned[:300], allow_redelivery=False)
    assert status["quarantined_regions"] == 1 and status["quarantined_bytes"] > 0
    assert status["delivered"] == 300 and status["pending"] == 0
    (report,) = status["quarantine_files"]
    details = json.loads(Path(report).read_text())
    assert details["reason"].startswith("torn tail") and Path(report).with_suffix(".bad").exists()


_COMPLETENESS_SCRIPT = """
import json, sys
from otel_decisions.settings import load_settings
from otel_decisions.store.client import get_client
from otel_decisions.catalogue import run_query
client = get_client(load_settings().resolved_dsn, role="admin")
before = run_query(client, "delivery_completeness").as_dicts()
lost = sys.argv[1:]
client.command("ALTER TABLE decisions DELETE WHERE decision_id IN %(ids)s SETTINGS mutations_sync = 2", {"ids": lost})
after = run_query(client, "delivery_completeness", {"only_incomplete": 1}).as_dicts()
print(json.dumps({"before": before, "after": after}, default=str))
"""


@pytest.mark.skipif(not _chdb_available(), reason="chDB or the ClickHouse exporter is not installed")
def test_completeness_query_compares_captured_with_stored(tmp_path: Path) -> None:
    env = delivery_env(tmp_path, free_port(), exporters="clickhouse")
    result = run_recorder(env, "--count", "300", "--returned", str(tmp_path / "ids"), "--flow-span",
                          "--flow-run-id", "run-1", "--flush-s", "60", timeout_s=300)
    assert result.returncode == 0, result.stderr
    assert "flushed" in result.stdout
    returned = read_ids(tmp_path / "ids")
    check = subprocess.run([PYTHON, "-c", _COMPLETENESS_SCRIPT, *returned[:5]], cwd=REPO, env=env,
                           capture_output=True, text=True, timeout=300)
    assert check.returncode == 0, check.stderr
    rows = json.loads(check.stdout.strip().splitlines()[-1])
    (before,) = rows["before"]
    assert (before["flow_run_id"], before["captured"], before["stored"], before["missing"]) == ("run-1", 300, 300, 0)
    (after,) = rows["after"]  # five decisions removed behind the pipeline's back: the check finds them
    assert (after["captured"], after["stored"], after["missing"], after["complete"]) == (300, 295, 5, 0)


def test_several_processes_record_at_once_one_drainer(tmp_path: Path) -> None:
    """Three flow processes share one spool root: one drains at a time, every decision lands once."""
    with Receiver(tmp_path / "store.sqlite") as receiver:
        env = delivery_env(tmp_path, receiver.port)
        recorders = [
            start_recorder(env, "--count", "3000", "--returned", str(tmp_path / f"ids-{n}"), "--flush-s", "60")
            for n in range(3)
        ]
        for recorder in recorders:
            out, err = recorder.communicate(timeout=120)
            assert recorder.returncode == 0, err
            assert "flushed" in out
        returned = [i for n in range(3) for i in read_ids(tmp_path / f"ids-{n}")]
        assert len(returned) == 9000
        assert_exactly_once(receiver, returned, allow_redelivery=False)
    status = json.loads(run_cli(env, "delivery", "status", "--json").stdout)
    assert status["pending"] == 0 and status["delivered"] == 9000 and status["captured"] == 9000


def test_forked_child_spools_to_its_own_directory(tmp_path: Path) -> None:
    """A process that forks after configuring: the child records into its own spool; nothing is lost."""
    script = """
import os, sys, uuid
from opentelemetry.sdk.trace import TracerProvider
from otel_decisions import semconv
from otel_decisions.settings import load_settings
from otel_decisions.delivery import DurableSpanProcessor
from otel_decisions.sdk import build_exporters
settings = load_settings()
processor = DurableSpanProcessor(build_exporters(settings), settings, shutdown_timeout_s=10)
provider = TracerProvider(); provider.add_span_processor(processor)
tracer = provider.get_tracer("t")
def record(path, n):
    with open(path, "a") as out:
        for _ in range(n):
            i = str(uuid.uuid4())
            tracer.start_span(semconv.DECISION_SPAN_PREFIX + "x", attributes={semconv.DECISION_ID: i}).end()
            out.write(i + "\\n")
record(sys.argv[1] + "-parent", 200)
pid = os.fork()
if pid == 0:
    record(sys.argv[1] + "-child", 300)
    ok = processor.force_flush(30000)
    provider.shutdown()
    os._exit(0 if ok else 3)
_, code = os.waitpid(pid, 0)
record(sys.argv[1] + "-parent", 200)
assert processor.force_flush(30000)
provider.shutdown()
sys.exit(code >> 8)
"""
    with Receiver(tmp_path / "store.sqlite") as receiver:
        env = delivery_env(tmp_path, receiver.port)
        result = subprocess.run([PYTHON, "-c", script, str(tmp_path / "ids")], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        returned = read_ids(tmp_path / "ids-parent") + read_ids(tmp_path / "ids-child")
        assert len(returned) == 700
        assert_exactly_once(receiver, returned, allow_redelivery=False)
