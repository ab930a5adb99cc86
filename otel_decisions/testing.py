"""A pytest fixture for asserting on the decisions your own flows record.

``capdecisions`` configures otel-decisions with an in-memory exporter (no spool, no store, a
fixed test key, a temporary data directory), instruments Prefect, and gives the test the decision,
review and checkpoint records as they would be exported: after the privacy pipeline, sealed into
the hash chain.

The fixture is registered as a pytest plugin (entry point ``pytest11``) when otel-decisions is
installed, so a test only names it::

    from prefect import flow, task

    @task
    def score(applicant: dict) -> dict:
        return {"decision": "approve", "confidence": 0.93}

    @flow
    def underwrite(applicant: dict) -> dict:
        return score(applicant)

    def test_every_applicant_gets_a_recorded_decision(capdecisions):
        underwrite({"applicant_id": "A-1", "income": 52_000})
        (decision,) = capdecisions.decisions()
        assert decision["decision.outcome"] == "approve"
        assert decision["decision.confidence"] == 0.93
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TEST_HMAC_KEY = "otel-decisions-test-key-not-for-production"
"""The pseudonym / digest key the fixture uses: pseudonyms in a test are stable from run to run."""


class CapturedDecisions:
    """The records exported since the fixture started (or since :meth:`clear`)."""

    def __init__(self, exporter: Any) -> None:
        self.exporter = exporter
        """The ``InMemorySpanExporter`` behind the fixture (every span, Prefect's run spans too)."""

    def spans(self) -> list[Any]:
        """Every finished span, after a flush (Prefect's run spans are scrubbed as exported)."""
        import otel_decisions

        otel_decisions.force_flush()
        return list(self.exporter.get_finished_spans())

    def _records(self, kind: Any) -> list[dict[str, Any]]:
        from otel_decisions import semconv

        return [dict(span.attributes or {}) for span in self.spans() if semconv.record_kind(span.name) is kind]

    def decisions(self) -> list[dict[str, Any]]:
        """The attributes of every decision span, in the order they ended."""
        from otel_decisions import semconv

        return self._records(semconv.RecordKind.DECISION)

    def reviews(self) -> list[dict[str, Any]]:
        """The attributes of every ``decision.review`` span."""
        from otel_decisions import semconv

        return self._records(semconv.RecordKind.REVIEW)

    def checkpoints(self) -> list[dict[str, Any]]:
        """The attributes of every integrity checkpoint span."""
        from otel_decisions import semconv

        return self._records(semconv.RecordKind.CHECKPOINT)

    def pseudonym(self, identifier: str) -> str:
        """The pseudonym the fixture's key gives *identifier* (compare with ``decision.subject.id``)."""
        from otel_decisions import _runtime

        return _runtime.get_runtime().privacy.pseudonymise(identifier)

    def clear(self) -> None:
        self.exporter.clear()


@pytest.fixture
def capdecisions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CapturedDecisions]:
    """otel-decisions configured for a test: in memory, instrumented, with a fixed test key."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    import otel_decisions

    memory = InMemorySpanExporter()
    data_dir: Path = tmp_path_factory.mktemp("otel-decisions")
    otel_decisions.configure(
        exporters=["none"], span_exporters=[memory], durable=False, hmac_key=TEST_HMAC_KEY, data_dir=str(data_dir)
    )
    instrumentor = otel_decisions.PrefectInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    captured = CapturedDecisions(memory)
    try:
        yield captured
    finally:
        otel_decisions.force_flush()
        memory.clear()
