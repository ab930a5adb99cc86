"""A stored decision verifies against its hash chain; an altered, deleted or replaced one is found."""

from __future__ import annotations

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from typer.testing import CliRunner

import otel_decisions
from otel_decisions.store.client import get_client
from otel_decisions.store.exporter import ClickHouseSpanExporter
from otel_decisions.store.schema import apply_migrations
from otel_decisions.cli import app
from otel_decisions.verify import verify

from .conftest import TEST_HMAC_KEY
from .records import RecordStore as _Store
from .seed import fresh_chdb_dsn


@pytest.fixture
def stored(tmp_path):
    """Ten decisions recorded through the capture API and stored in a fresh chDB database."""
    store = _Store(tmp_path, "integrity")
    recorded = [otel_decisions.record_decision(type="credit.approval", outcome="deny" if i % 3 else "approve",
                                               confidence=0.6, inputs={"i": i}) for i in range(10)]
    store.store()
    return store.dsn, store.client, recorded


def test_intact_store_verifies(stored):
    dsn, client, recorded = stored
    report = verify(client)
    assert report.ok, report.problems
    assert report.checked == 10 and report.chains == 1
    result = CliRunner().invoke(app, ["verify", "--dsn", dsn])
    assert result.exit_code == 0 and "10 records in 1 chains verified" in result.output


def test_altered_outcome_is_found(stored):
    dsn, client, recorded = stored
    target = recorded[4]
    client.command(f"ALTER TABLE decisions UPDATE outcome = 'approve' WHERE decision_id = '{target.id}' "
                   "SETTINGS mutations_sync = 2")
    report = verify(client)
    assert [(p.kind, p.record_id) for p in report.problems] == [("altered", target.id)]
    result = CliRunner().invoke(app, ["verify", "--dsn", dsn])
    assert result.exit_code == 1 and "altered" in result.output


def test_deleted_record_is_found(stored):
    dsn, client, recorded = stored
    gone = recorded[6]
    client.command(f"ALTER TABLE decisions DELETE WHERE decision_id = '{gone.id}' SETTINGS mutations_sync = 2")
    client.command(f"ALTER TABLE otel_traces DELETE WHERE SpanAttributes['decision.id'] = '{gone.id}' "
                   "SETTINGS mutations_sync = 2")
    report = verify(client)
    assert [(p.kind, p.seq) for p in report.problems] == [("missing", 8)]
    assert "7..7" in report.problems[0].detail


def test_altered_span_in_otel_traces_is_found(stored):
    dsn, client, recorded = stored
    target = recorded[2]
    client.command("ALTER TABLE otel_traces UPDATE SpanAttributes = mapUpdate(SpanAttributes, map('decision.outcome', 'approve')) "
                   f"WHERE SpanAttributes['decision.id'] = '{target.id}' SETTINGS mutations_sync = 2")
    kinds = {(p.kind, p.record_id) for p in verify(client).problems}
    assert ("altered", target.id) in kinds


def test_decision_recorded_again_by_a_retry_is_not_a_break(tmp_path):
    """A retried task may record the same decision (same id) again: a new link, not tampering."""
    store = _Store(tmp_path, "integrity_retry")
    first = otel_decisions.record_decision(type="t", outcome="deny", confidence=0.6)
    otel_decisions.record_decision(type="t", outcome="approve", confidence=0.7)
    otel_decisions.record_decision(otel_decisions.Decision(type="t", outcome="deny", confidence=0.6, id=first.id))
    store.store(redeliver_first=True)  # and a re-delivery of the first span
    client = store.client
    report = verify(client)
    assert report.ok, report.problems
    assert report.checked == 3



def test_deleting_the_newest_record_is_found_by_the_signed_checkpoint(stored):
    dsn, client, recorded = stored
    key = TEST_HMAC_KEY.encode()
    assert verify(client, key=key).ok and verify(client, key=key).checkpoints == 1
    newest = recorded[-1]
    for table, column in (("otel_traces", "SpanAttributes['decision.id']"), ("decisions", "decision_id")):
        client.command(f"ALTER TABLE {table} DELETE WHERE {column} = '{newest.id}' SETTINGS mutations_sync = 2")
    report = verify(client, key=key)
    assert [(p.kind, p.seq) for p in report.problems] == [("missing", 10)]
    assert "records 10..10 are missing" in report.problems[0].detail


def test_a_checkpoint_forged_without_the_key_is_reported(stored):
    dsn, client, recorded = stored
    key = TEST_HMAC_KEY.encode()
    # an attacker deletes the newest record and rewrites the checkpoint to the new head, without the key
    newest = recorded[-1]
    for table, column in (("otel_traces", "SpanAttributes['decision.id']"), ("decisions", "decision_id")):
        client.command(f"ALTER TABLE {table} DELETE WHERE {column} = '{newest.id}' SETTINGS mutations_sync = 2")
    head_hash = client.query("SELECT SpanAttributes['decision.integrity.hash'] FROM otel_traces "
                             "WHERE SpanAttributes['decision.integrity.seq'] = '9'").result_rows[0][0]
    client.command("ALTER TABLE otel_traces UPDATE SpanAttributes = mapUpdate(SpanAttributes, "
                   f"map('decision.integrity.seq', '9', 'decision.integrity.hash', '{head_hash}')) "
                   "WHERE SpanName = 'decision.integrity.checkpoint' SETTINGS mutations_sync = 2")
    report = verify(client, key=key)
    assert [p.kind for p in report.problems] == ["forged_checkpoint"]
    # a verifier without the key cannot tell, and says it did not check the signature
    unkeyed = verify(client)
    assert unkeyed.ok and unkeyed.unsigned_checkpoints == 1


@pytest.fixture
def stored_with_review(tmp_path):
    store = _Store(tmp_path, "integrity_reviews")
    first = otel_decisions.record_decision(type="credit.approval", outcome="deny", confidence=0.55,
                                           reasons=["Income insufficient", "Delinquent obligations"], inputs={"i": 1})
    review_id = otel_decisions.record_review(first, reviewer="analyst-2", action="override", new_outcome="approve")
    otel_decisions.record_decision(type="credit.approval", outcome="approve", confidence=0.9, inputs={"i": 2})
    store.store()
    client = store.client
    assert verify(client, key=TEST_HMAC_KEY.encode()).ok
    return client, first, review_id


@pytest.mark.parametrize(
    ("tamper", "expected_kind"),
    [
        # the typed table every query reads: a changed reason, confidence or model is found
        ("ALTER TABLE decisions UPDATE reasons = ['Length of employment'] WHERE decision_id = '{first}'", "altered"),
        ("ALTER TABLE decisions UPDATE confidence = 0.99 WHERE decision_id = '{first}'", "altered"),
        # a row deleted from the typed table only
        ("ALTER TABLE decisions DELETE WHERE decision_id = '{first}'", "not_in_store"),
        # a review deleted from the typed table only, or from both tables
        ("ALTER TABLE decision_reviews DELETE WHERE review_id = '{review}'", "not_in_store"),
        # any stored attribute of the span itself (not only id/type/outcome) is covered by its hash
        ("ALTER TABLE otel_traces UPDATE SpanAttributes = mapUpdate(SpanAttributes, map('decision.confidence', '0.99')) "
         "WHERE SpanAttributes['decision.id'] = '{first}' AND SpanName != 'decision.review'", "altered"),
        # a review deleted everywhere breaks the chain: reviews are links too
        ("ALTER TABLE otel_traces DELETE WHERE SpanName = 'decision.review'", "missing"),
    ],
)
def test_tampering_with_any_field_or_table_is_found(stored_with_review, tamper, expected_kind):
    client, first, review_id = stored_with_review
    client.command(tamper.format(first=first.id, review=review_id) + " SETTINGS mutations_sync = 2")
    if "DELETE WHERE SpanName = 'decision.review'" in tamper:
        client.command(f"ALTER TABLE decision_reviews DELETE WHERE review_id = '{review_id}' SETTINGS mutations_sync = 2")
    kinds = {p.kind for p in verify(client, key=TEST_HMAC_KEY.encode()).problems}
    assert expected_kind in kinds, kinds


def test_a_row_inserted_behind_the_pipelines_back_is_found(stored_with_review):
    client, first, _ = stored_with_review
    client.command("INSERT INTO decisions (decision_id, timestamp, decision_type, outcome) "
                   "VALUES ('6f1c1a9e-0000-4000-8000-000000000001', now64(9), 'credit.approval', 'approve')")
    problems = verify(client).problems
    assert [(p.kind, p.record_id) for p in problems] == [("altered", "6f1c1a9e-0000-4000-8000-000000000001")]


def test_a_refused_record_leaves_no_gap_in_the_chain(tmp_path):
    """The store refusing a decision (e.g. quota policy 'fail') fails the call; the chain stays whole."""
    import importlib

    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    from otel_decisions.delivery import SpoolQuotaError

    memory = InMemorySpanExporter()

    class RefuseSecondDecision(SpanProcessor):
        """Stands where the durable spool stands: a refused record is never stored."""

        def __init__(self) -> None:
            self.inner, self.calls = SimpleSpanProcessor(memory), 0

        def on_end(self, span) -> None:  # noqa: ANN001
            if span.name.startswith("decision "):
                self.calls += 1
                if self.calls == 2:
                    raise SpoolQuotaError("spool quota reached")
            self.inner.on_end(span)

    provider = TracerProvider()
    provider.add_span_processor(RefuseSecondDecision())
    importlib.import_module("otel_decisions.capture").chain.reset()
    otel_decisions.configure(tracer_provider=provider, exporters=["none"], durable=False,
                             data_dir=str(tmp_path), hmac_key=TEST_HMAC_KEY)
    try:
        otel_decisions.record_decision(type="t", outcome="a")
        with pytest.raises(SpoolQuotaError, match="quota"):
            otel_decisions.record_decision(type="t", outcome="b")
        otel_decisions.record_decision(type="t", outcome="c")
        otel_decisions.force_flush()
    finally:
        otel_decisions.shutdown()
    dsn = fresh_chdb_dsn("integrity_refused")
    client = get_client(dsn, role="admin")
    apply_migrations(client)
    exporter = ClickHouseSpanExporter(dsn)
    exporter.export(memory.get_finished_spans())
    exporter.shutdown()
    report = verify(client, key=TEST_HMAC_KEY.encode())
    assert report.ok, report.problems
    assert report.checked == 2 and report.checkpoints == 1


def test_a_new_key_starts_a_new_chain(tmp_path):
    """Reconfiguring with another HMAC key checkpoints the old chain and starts a new one: both verify."""
    store = _Store(tmp_path, "integrity_rekey")
    otel_decisions.record_decision(type="t", outcome="a")
    otel_decisions.force_flush()
    first_key_spans = list(store.memory.get_finished_spans())
    store.memory = InMemorySpanExporter()  # configure() shuts the previous exporters down
    otel_decisions.configure(exporters=["none"], span_exporters=[store.memory], durable=False,
                             data_dir=str(tmp_path), hmac_key="another-key-0123456789abcdef")
    otel_decisions.record_decision(type="t", outcome="b")
    otel_decisions.force_flush()
    exporter = ClickHouseSpanExporter(store.dsn)
    exporter.export([*first_key_spans, *store.memory.get_finished_spans()])
    exporter.shutdown()
    report = verify(store.client, key=TEST_HMAC_KEY.encode())
    assert report.ok, report.problems
    assert report.chains == 2 and report.checkpoints == 2 and report.unsigned_checkpoints == 1
