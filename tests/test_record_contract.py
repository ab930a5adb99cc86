"""The recording contract: unique ids whatever the application seeds, no chain link for a span the
sampler drops, and a spool refusal that reaches the recording call without any processor raising."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import Decision as SamplingDecision
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult

import otel_decisions
from otel_decisions import semconv
from otel_decisions.errors import OtelDecisionsError

_SEEDED = """
import random, sys
import numpy
random.seed(42)
numpy.random.seed(42)
from otel_decisions import record_decision
from otel_decisions.capture import new_id
print(new_id())
print(record_decision(type="t", outcome="ok").id)
"""


def _seeded_ids() -> list[str]:
    env = {**os.environ, "OTEL_DECISIONS_EXPORTERS": "none", "OTEL_DECISIONS_DURABLE": "false"}
    out = subprocess.run([sys.executable, "-c", _SEEDED], capture_output=True, text=True, env=env, timeout=120, check=True)
    return out.stdout.split()


def test_ids_do_not_repeat_after_the_application_seeds_random() -> None:
    """A seeded ML script run twice must not replay decision ids (the store's deduplication key)."""
    first, second = _seeded_ids(), _seeded_ids()
    assert len(first) == len(second) == 2
    assert not set(first) & set(second), (first, second)
    assert "bdd640fb-0667-4ad1-9c80-317fa3b1799d" not in first + second  # uuid from random.seed(42)


def test_ids_differ_in_a_forked_child() -> None:
    from otel_decisions.capture import new_id

    new_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.write(write, new_id().encode())
        os._exit(0)
    os.close(write)
    child = os.read(read, 64).decode()
    os.waitpid(pid, 0)
    assert child != new_id()
    assert len({new_id() for _ in range(10_000)}) == 10_000


class _DropFirstDecision(Sampler):
    """Drops the first decision span it sees, keeps everything else."""

    def __init__(self) -> None:
        self.dropped = 0

    def should_sample(self, parent_context, trace_id, name, kind=None, attributes=None, links=None, trace_state=None):  # noqa: ANN001, ANN201
        if name.startswith(semconv.DECISION_SPAN_PREFIX) and not self.dropped:
            self.dropped += 1
            return SamplingResult(SamplingDecision.DROP)
        return SamplingResult(SamplingDecision.RECORD_AND_SAMPLE, attributes)

    def get_description(self) -> str:
        return "DropFirstDecision"


def test_a_decision_the_sampler_drops_takes_no_place_in_the_chain(tmp_path: Path) -> None:
    sampler = _DropFirstDecision()
    provider = TracerProvider(sampler=sampler)
    memory = InMemorySpanExporter()
    otel_decisions.configure(exporters=["none"], span_exporters=[memory], durable=False, always_sample_decisions=False,
                             data_dir=str(tmp_path), hmac_key="contract-test-key-0123456789", tracer_provider=provider)
    try:
        otel_decisions.record_decision(type="t", outcome="dropped")
        kept = otel_decisions.record_decision(type="t", outcome="kept")
        otel_decisions.force_flush()
        assert sampler.dropped == 1
        (span,) = [s for s in memory.get_finished_spans() if s.name.startswith(semconv.DECISION_SPAN_PREFIX)]
        assert span.attributes[semconv.DECISION_ID] == kept.id
        assert span.attributes[semconv.DECISION_INTEGRITY_PREV_HASH] == ""  # the chain starts at the kept one
        (checkpoint,) = [s for s in memory.get_finished_spans() if s.name == semconv.CHECKPOINT_SPAN_NAME]
        assert checkpoint.attributes[semconv.DECISION_INTEGRITY_SEQ] == span.attributes[semconv.DECISION_INTEGRITY_SEQ]
        assert checkpoint.attributes[semconv.DECISION_INTEGRITY_HASH] == span.attributes[semconv.DECISION_INTEGRITY_HASH]
    finally:
        otel_decisions.shutdown()


class _Seen(SpanProcessor):
    def __init__(self) -> None:
        self.names: list[str] = []

    def on_end(self, span: ReadableSpan) -> None:
        self.names.append(span.name)


def test_a_refused_record_raises_at_the_recording_call_and_no_processor_raises(tmp_path: Path) -> None:
    """Spool quota reached with quota_policy=fail: ``record_decision`` raises the refusal; the durable
    processor's ``on_end`` raises nothing (a processor after it still sees the span), and a run span the
    spool refuses never raises into whatever ended it."""
    from otel_decisions.delivery import DurableSpanProcessor, SpoolQuotaError
    from otel_decisions.settings import load_settings

    settings = load_settings(data_dir=str(tmp_path), spool_quota_bytes=1 << 16, quota_policy="fail", exporters=["none"])
    durable = DurableSpanProcessor([InMemorySpanExporter()], settings, ship=False)
    after = _Seen()
    provider = TracerProvider()
    provider.add_span_processor(durable)
    provider.add_span_processor(after)
    otel_decisions.configure(exporters=["none"], durable=False, data_dir=str(tmp_path),
                             hmac_key="contract-test-key-0123456789", tracer_provider=provider)
    tracer = provider.get_tracer("run-spans")
    try:
        recorded = 0
        with pytest.raises(SpoolQuotaError) as refused:
            for _ in range(10_000):
                otel_decisions.record_decision(type="t", outcome="ok", rationale="x" * 2000)
                recorded += 1
        assert isinstance(refused.value, OtelDecisionsError) and "quota_policy=fail" in str(refused.value)
        assert 0 < recorded < 10_000
        assert after.names.count("decision t") == recorded + 1  # the refused one reached the next processor too
        tracer.start_span("task-run").end()  # a run span refused by the full spool: no exception
        assert after.names[-1] == "task-run"
    finally:
        otel_decisions.shutdown()
        durable.shutdown()
