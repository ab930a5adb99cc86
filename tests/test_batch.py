"""``record_decisions``: one decision per row of a DataFrame, a pyarrow Table or a list, in a real Prefect task.

Each row's record must be the one ``record_decision`` makes for it (the equality test compares every
attribute but the ids, the chain position and the digest of the record itself); invalid rows are
reported with their row numbers and the valid ones recorded; personal-data columns are masked.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re

import pyarrow as pa
import pytest
from prefect import flow, task

import otel_decisions
from otel_decisions import semconv
from otel_decisions.errors import DecisionValidationError

pd = pytest.importorskip("pandas")

# synthetic applicants
ROWS = [
    {"applicant_id": f"APP-SYN-{i:04d}", "email": f"person{i}@example.org", "income": 30_000 + 1_000 * i,
     "debt_ratio": round(0.2 + i / 100, 3), "decision": "deny" if i % 3 == 0 else "approve",
     "confidence": round(0.55 + i / 200, 4), "top_reasons": [f"reason {i}a", f"reason {i}b"]}
    for i in range(12)
]
CONSTANTS = {"model_name": "credit-lr", "model_version": "3.2.0", "threshold": 0.5, "regulations": ("REG-B",)}
_PER_RECORD = (semconv.DECISION_ID, "decision.integrity.seq", "decision.integrity.hash",
               "decision.integrity.prev_hash", "decision.integrity.chain")


def _decisions(memory) -> list:
    otel_decisions.force_flush()
    return [s for s in memory.get_finished_spans() if s.name.startswith("decision ")]


def _comparable(span) -> dict:
    return {k: v for k, v in span.attributes.items() if k not in _PER_RECORD}


def test_a_dataframe_task_records_one_decision_per_row(captured) -> None:
    frame = pd.DataFrame(ROWS)

    @task
    def score(df):
        ids = otel_decisions.record_decisions(df, type="credit.approval", subject_id_column="applicant_id",
                                              columns={"reasons": "top_reasons"}, **CONSTANTS)
        return list(ids)

    @flow
    def nightly():
        return score(frame)

    ids = nightly()
    spans = _decisions(captured)
    assert [s.attributes[semconv.DECISION_ID] for s in spans] == ids and len(ids) == len(ROWS)
    for row, span in zip(ROWS, spans, strict=True):
        attrs = span.attributes
        assert attrs[semconv.DECISION_OUTCOME] == row["decision"]
        assert attrs[semconv.DECISION_CONFIDENCE] == row["confidence"]
        assert tuple(attrs[semconv.DECISION_REASONS]) == tuple(row["top_reasons"])
        assert attrs[semconv.DECISION_MODEL_VERSION] == "3.2.0" and attrs[semconv.DECISION_THRESHOLD] == 0.5
        assert re.fullmatch(r"[0-9a-f]{64}", attrs[semconv.DECISION_SUBJECT_ID])
        inputs = json.loads(attrs[semconv.DECISION_INPUTS])
        assert set(inputs) == {"email", "income", "debt_ratio"}  # the outcome, confidence, subject, reasons are not inputs
        assert inputs["email"] == "[REDACTED]" and inputs["income"] == row["income"]
        assert semconv.PREFECT_TASK_RUN_ID in attrs
        text = json.dumps(dict(attrs), default=str)
        assert row["email"] not in text and row["applicant_id"] not in text


def test_each_row_is_the_record_record_decision_makes(captured) -> None:
    table = pa.Table.from_pylist(ROWS)

    @task
    def both():
        batch = otel_decisions.record_decisions(table, type="credit.approval", subject_id_column="applicant_id",
                                                columns={"reasons": "top_reasons"}, **CONSTANTS)
        singles = []
        for row in ROWS:
            inputs = {k: v for k, v in row.items() if k not in ("decision", "confidence", "applicant_id", "top_reasons")}
            singles.append(otel_decisions.record_decision(
                type="credit.approval", outcome=row["decision"], confidence=row["confidence"],
                subject_id=row["applicant_id"], reasons=row["top_reasons"], inputs=inputs, **CONSTANTS).id)
        return list(batch), singles

    @flow
    def compare():
        return both()

    batch_ids, single_ids = compare()
    by_id = {s.attributes[semconv.DECISION_ID]: s for s in _decisions(captured)}
    for batch_id, single_id in zip(batch_ids, single_ids, strict=True):
        batch, single = by_id[batch_id], by_id[single_id]
        assert _comparable(batch) == _comparable(single)
        assert batch.attributes[semconv.DECISION_INPUTS_DIGEST] == single.attributes[semconv.DECISION_INPUTS_DIGEST]
        assert batch.attributes["decision.integrity.chain"] == single.attributes["decision.integrity.chain"]
    seqs = [by_id[i].attributes["decision.integrity.seq"] for i in batch_ids]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # consecutive links of this process's chain


def test_invalid_rows_are_reported_by_row_number_and_the_rest_recorded(captured, caplog) -> None:
    rows = [dict(r) for r in ROWS[:6]]
    rows[1]["confidence"] = math.nan
    rows[4]["decision"] = ""

    @dataclasses.dataclass
    class Scored:
        applicant_id: str
        decision: str
        confidence: float
        income: int

    @task
    def score():
        as_dicts = otel_decisions.record_decisions(rows, type="credit.approval", subject_id_column="applicant_id")
        as_objects = otel_decisions.record_decisions(
            [Scored(r["applicant_id"], r["decision"], r["confidence"], r["income"]) for r in rows[:3]],
            type="credit.approval", subject_id_column="applicant_id")
        return as_dicts, as_objects

    @flow
    def nightly():
        return score()

    with caplog.at_level("WARNING", logger="otel_decisions"):
        as_dicts, as_objects = nightly()
    assert [(n, field) for n, field, _problem in as_dicts.invalid] == [(1, "confidence"), (4, "outcome")]
    assert as_dicts[1] is None and as_dicts[4] is None and as_dicts.recorded == 4
    assert [n for n, _f, _p in as_objects.invalid] == [1] and as_objects.recorded == 2
    assert any("row 1: confidence" in r.getMessage() and "row 4: outcome" in r.getMessage() for r in caplog.records)
    recorded = {s.attributes[semconv.DECISION_ID] for s in _decisions(captured)}
    assert {i for i in [*as_dicts, *as_objects] if i} == recorded and len(recorded) == 6


def test_record_decisions_says_what_is_wrong(captured) -> None:
    with pytest.raises(DecisionValidationError) as raised:
        otel_decisions.record_decisions(42, type="t")
    assert raised.value.field == "rows"
    with pytest.raises(DecisionValidationError) as raised:
        otel_decisions.record_decisions(ROWS, type="t", columns={"colour": "decision"})
    assert raised.value.field == "columns['colour']"
    with pytest.raises(DecisionValidationError) as raised:
        otel_decisions.record_decisions(ROWS, type="t", subject_id="everyone")
    assert raised.value.field == "subject_id"
    assert _decisions(captured) == []


# --- zero-code: a task returning a batch ------------------------------------------------------------------
SCORED = [
    {"subject_id": f"APP-SYN-{i:04d}", "email": f"person{i}@example.org", "income": 40_000 + i,
     "prediction": "deny" if i % 2 else "approve", "probability": round(0.6 + i / 100, 4),
     "reasons": [f"reason {i}"], "model_version": "4.0.1"}
    for i in range(8)
]


def _by_task(spans) -> dict[str, list]:
    grouped: dict[str, list] = {}
    for span in spans:
        grouped.setdefault(span.attributes.get(semconv.PREFECT_TASK_RUN_ID, ""), []).append(span)
    return grouped


def test_a_task_returning_a_dataframe_or_a_list_records_a_decision_per_row(captured) -> None:
    @task
    def predict_frame(n: int):
        return pd.DataFrame(SCORED[:n])

    @task
    def predict_list(n: int) -> list[dict]:
        return [dict(r) for r in SCORED[:n]]

    @task
    def predict_table(n: int):
        return pa.Table.from_pylist(SCORED[:n])

    @flow
    def nightly():
        frame = predict_frame(8)
        rows = predict_list(3)
        table = predict_table(2)
        mapped = predict_list.map([1, 2, 3]).result()
        return frame, rows, table, mapped

    frame, rows, table, mapped = nightly()
    assert isinstance(frame, pd.DataFrame) and frame.shape == (8, 7)  # the task's result, unchanged
    assert rows == SCORED[:3] and table.num_rows == 2 and [len(m) for m in mapped] == [1, 2, 3]
    spans = _decisions(captured)
    assert sorted(len(group) for group in _by_task(spans).values()) == [1, 2, 2, 3, 3, 8]
    first_frame = [s for s in spans if s.attributes[semconv.DECISION_TYPE] == "predict_frame"]
    for row, span in zip(SCORED, first_frame, strict=True):
        attrs = span.attributes
        assert attrs[semconv.DECISION_SOURCE] == "auto"
        assert (attrs[semconv.DECISION_OUTCOME], attrs[semconv.DECISION_CONFIDENCE]) == (row["prediction"], row["probability"])
        assert tuple(attrs[semconv.DECISION_REASONS]) == tuple(row["reasons"])
        assert attrs[semconv.DECISION_MODEL_VERSION] == "4.0.1"
        assert re.fullmatch(r"[0-9a-f]{64}", attrs[semconv.DECISION_SUBJECT_ID])
        inputs = json.loads(attrs[semconv.DECISION_INPUTS])
        assert inputs == {"email": "[REDACTED]", "income": row["income"]}
        assert row["email"] not in json.dumps(dict(attrs)) and row["subject_id"] not in json.dumps(dict(attrs))
    assert len({s.attributes[semconv.DECISION_ID] for s in spans}) == len(spans)


def test_batches_that_are_not_new_decisions_record_nothing(captured, caplog) -> None:
    @task
    def one(i: int) -> dict:
        return dict(SCORED[i])

    @task
    def gather() -> list[dict]:
        return [one(i) for i in range(3)]  # the decisions of the tasks it called: recorded once, by them

    @task
    def mixed() -> list[dict]:
        return [dict(SCORED[0]), {"prediction": "approve"}]  # not every row has a confidence

    @task
    def plain() -> list[dict]:
        return [{"subject_id": "x", "income": 1}]

    @task
    def broken():
        frame = pd.DataFrame(SCORED[:4])
        frame.loc[2, "probability"] = math.nan
        return frame

    @flow
    def f():
        return gather(), mixed(), plain(), broken()

    with caplog.at_level("WARNING", logger="otel_decisions"):
        gathered, _mixed, _plain, frame = f()
    assert len(gathered) == 3 and frame.shape == (4, 7)
    types = sorted(s.attributes[semconv.DECISION_TYPE] for s in _decisions(captured))
    assert types == ["broken"] * 3 + ["one"] * 3
    assert any("task 'broken' returned 4 rows" in r.getMessage() and "row 2: confidence" in r.getMessage()
               for r in caplog.records)


def test_batch_settings_choose_the_subject_and_the_inputs(captured, tmp_path_factory) -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests.conftest import TEST_HMAC_KEY

    memory = InMemorySpanExporter()  # configure() shuts down the exporters it replaces: a fresh one
    otel_decisions.configure(exporters=["none"], span_exporters=[memory], durable=False, hmac_key=TEST_HMAC_KEY,
                             data_dir=str(tmp_path_factory.mktemp("batch-settings")), service_name="capture-tests",
                             batch_subject_id_column="customer_no", batch_inputs_exclude=["income"])
    rows = [{**{k: v for k, v in r.items() if k != "subject_id"}, "customer_no": f"C-SYN-{i}"}
            for i, r in enumerate(SCORED[:2])]

    @task
    def predict() -> list[dict]:
        return [dict(r) for r in rows]

    @flow
    def f():
        return predict()

    f()
    spans = _decisions(memory)
    assert len(spans) == 2
    from otel_decisions import _runtime

    policy = _runtime.get_runtime().privacy
    for i, span in enumerate(spans):
        inputs = json.loads(span.attributes[semconv.DECISION_INPUTS])
        assert inputs == {"email": "[REDACTED]"}  # customer_no is the subject, income is excluded
        assert span.attributes[semconv.DECISION_SUBJECT_ID] == policy.pseudonymise(f"C-SYN-{i}")
    memory = InMemorySpanExporter()
    otel_decisions.configure(exporters=["none"], span_exporters=[memory], durable=False, hmac_key=TEST_HMAC_KEY,
                             data_dir=str(tmp_path_factory.mktemp("batch-off")), service_name="capture-tests",
                             auto_capture_batches=False)
    f()
    otel_decisions.force_flush()
    names = [s.name for s in memory.get_finished_spans()]
    assert names and not [n for n in names if n.startswith("decision ")]  # spans arrive, no decision among them


def test_batch_decisions_are_stored_once_and_verify(tmp_path) -> None:
    from otel_decisions.verify import verify
    from tests.records import RecordStore

    store = RecordStore(tmp_path, "batch")
    frame = pd.DataFrame(ROWS)
    ids = otel_decisions.record_decisions(frame, type="credit.approval", subject_id_column="applicant_id",
                                          columns={"reasons": "top_reasons"}, **CONSTANTS)
    store.store(redeliver_first=True)
    (stored, distinct) = store.client.query(
        "SELECT count(), uniqExact(decision_id) FROM decisions FINAL WHERE has({ids:Array(String)}, decision_id)",
        parameters={"ids": list(ids)}).result_rows[0]
    assert stored == distinct == len(ROWS)
    report = verify(store.client)
    assert report.ok, report


# --- the column path: each of its rules equals the per-call path's ------------------------------------------
def test_the_column_path_s_digests_and_hmacs_equal_the_per_call_ones() -> None:
    import hashlib
    import hmac
    import random

    from otel_decisions.integrity import HashChain, RecordDigester, record_digest
    from otel_decisions.privacy import PrivacyPolicy, canonical_json_bytes

    for key in (b"k" * 16, b"a-key-of-exactly-64-bytes-".ljust(64, b"x"), b"long" * 40):
        policy = PrivacyPolicy(mode="denylist", deny_patterns=[], allow_patterns=[], key=key)
        for data in (b"", b"applicant", b"x" * 5000):
            assert policy.hmac_hex(data) == hmac.digest(key, data, "sha256").hex()
    constant = {"decision.type": "credit", "decision.reasons": ("a", "b"), "decision.threshold": 0.5,
                "decision.integrity.chain": "ignored", "prefect.task_run.id": "t"}
    digester_keys = ["decision.confidence", "decision.redacted", "decision.id", "decision.n"]
    constant["decision.rationale"] = "100% of the 50%-rule"  # a % in the constant text
    digester = RecordDigester(constant, digester_keys)
    rng = random.Random(3)
    for i in range(300):
        attrs = dict(constant)
        attrs["decision.id"] = f"id-{i}"
        if i % 3:
            attrs["decision.confidence"] = rng.choice([0.0, -0.0, 1.0, 0.25, 1e-7, rng.random()])
        if i % 4:
            attrs["decision.redacted"] = rng.choice([("inputs.email",), ("inputs.email", "outcome"), ("é\u2028",)])
        if i % 5 == 0:
            attrs["decision.n"] = rng.choice([True, 1, 1.0, (True,), (1,)])
        assert digester.digest(attrs) == record_digest(attrs), attrs
        present = sorted(k for k in digester_keys if k in attrs)
        texts = [digester.render(attrs[k]) for k in present]
        assert digester.for_keys(present)(texts) == record_digest(attrs), attrs
    # JSON: where orjson writes a float as Python's json does (the digest's canonical form), and where not
    for _ in range(20_000):
        x = rng.choice([1, -1]) * 10 ** rng.uniform(-4, 300)
        value = {"x": x, "s": "é\\\"\n\x01\u2028", "n": rng.randint(-2**63, 2**63 - 1), "b": True, "z": None}
        assert orjson_dumps(value) == canonical_json_bytes(value), value
    assert orjson_dumps({"x": 9.99e-05}) != canonical_json_bytes({"x": 9.99e-05})  # why 1e-4 is the bound
    one, many = HashChain(), HashChain()
    records = [(f"r{i}", 1000 + i, hashlib.sha256(str(i).encode()).hexdigest()) for i in range(5)]
    singles = [one.link(*r) for r in records]
    chain_id, first, hashes, before = many.link_many(records)
    assert (first, before) == (1, "") and hashes == [h for _c, _s, h, _p in singles]
    assert many.unlink_from(4, hashes[2], 2) and many.link(*records[3])[2] == hashes[3]


def orjson_dumps(value) -> bytes:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


# synthetic people; the notes and outcomes hold identifiers the free-text patterns find
MIXED = [
    {"applicant_id": f"APP-SYN-{i:04d}", "first_name": ["Robin", "Sam", "Alex"][i % 3],
     "email": f"person{i}@example.org", "phone": "+44 20 7946 0000", "income": 30_000 + 917 * i,
     "debt_ratio": round(0.1 + i / 37, 5), "flag": i % 2 == 0, "missing": None, "region": "north-é",
     "notes": ["ok", "call +1 202 555 0100 back", "mail ops@example.com", "see Robin"][i % 4],
     "decision": ["approve", "deny", "refer ops@example.com"][i % 3], "confidence": round(0.5 + i / 100, 4)}
    for i in range(24)
]
MIXED[5]["debt_ratio"] = 3e-05      # JSON writes it 3e-05, orjson 0.00003: the per-call path's digest
MIXED[6]["income"] = 2**70          # beyond 64 bits
MIXED[7]["debt_ratio"] = math.nan   # an input NaN (recorded as 'nan')
MIXED[8]["notes"] = "from person8@example.org"  # a masked value of the row in another of its texts
MIXED[9]["confidence"] = 1          # an int: validated and stored as the per-call path does
BATCH_CONSTANTS = {"model_name": "credit-gbm", "model_version": "3.2.0", "threshold": 0.5,
                   "rationale": "score above threshold; escalations to risk@example.com", "regulations": ("REG-B",)}


@pytest.fixture(params=["spool", "sdk-spans"])
def pipeline(request, prefect_harness, tmp_path):
    """The durable spool configure() builds (batches written to it directly), or spans through the SDK
    (durable off): the records must be the same either way."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from tests.conftest import TEST_HMAC_KEY

    memory = InMemorySpanExporter()
    otel_decisions.configure(exporters=["none"], span_exporters=[memory], durable=request.param == "spool",
                             hmac_key=TEST_HMAC_KEY, data_dir=str(tmp_path), service_name="capture-tests")
    instrumentor = otel_decisions.PrefectInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    yield request.param, memory
    otel_decisions.force_flush()


def test_the_batch_path_stores_what_record_decision_stores(pipeline) -> None:
    from otel_decisions import _runtime

    kind, memory = pipeline
    runtime = _runtime.get_runtime()
    direct = runtime.record_sink is not None and runtime.record_sink.target(runtime.tracer, 40) is not None
    assert direct is (kind == "spool")  # the spool pipeline takes the direct path, the other makes SDK spans
    frame = pd.DataFrame(MIXED)

    @task
    def both():
        batch = otel_decisions.record_decisions(frame, type="credit.approval", subject_id_column="applicant_id",
                                                **BATCH_CONSTANTS)
        singles = []
        for row in frame.to_dict("records"):
            inputs = {k: v for k, v in row.items() if k not in ("decision", "confidence", "applicant_id")}
            singles.append(otel_decisions.record_decision(
                type="credit.approval", outcome=row["decision"], confidence=row["confidence"],
                subject_id=row["applicant_id"], inputs=inputs, **BATCH_CONSTANTS).id)
        return list(batch), singles

    @flow
    def compare():
        return both()

    batch_ids, single_ids = compare()
    assert None not in batch_ids
    by_id = {s.attributes[semconv.DECISION_ID]: s for s in _decisions(memory)}
    assert set(by_id) == {*batch_ids, *single_ids}
    for batch_id, single_id in zip(batch_ids, single_ids, strict=True):
        batch, single = by_id[batch_id], by_id[single_id]
        assert _comparable(batch) == _comparable(single)
        assert list(_comparable(batch)) == list(_comparable(single))  # in the same order, too
        for field in ("name", "kind", "parent", "status", "events", "links"):
            assert getattr(batch, field) == getattr(single, field), field
        assert batch.context.trace_id == single.context.trace_id
        assert batch.context.trace_flags == single.context.trace_flags
        assert batch.start_time == batch.end_time and batch.resource.attributes == single.resource.attributes
        assert batch.instrumentation_scope == single.instrumentation_scope
    first = by_id[batch_ids[0]].attributes
    assert list(first[semconv.DECISION_REDACTED]) == [
        "inputs.first_name", "inputs.email", "inputs.phone", "rationale"]
    refer = by_id[batch_ids[2]].attributes
    assert refer[semconv.DECISION_OUTCOME] != MIXED[2]["decision"] and "outcome" in refer[semconv.DECISION_REDACTED]
    for i, batch_id in enumerate(batch_ids):
        text = json.dumps(dict(by_id[batch_id].attributes), default=str)
        for secret in (MIXED[i]["email"], MIXED[i]["applicant_id"], "+44 20 7946 0000", "risk@example.com"):
            assert secret not in text
    seqs = [by_id[i].attributes["decision.integrity.seq"] for i in batch_ids]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_a_processor_of_the_application_s_own_sees_every_batch_decision(pipeline) -> None:
    """A processor added to the provider after configure() gets each record as an SDK span (no direct write
    skips it)."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_decisions import _runtime

    kind, memory = pipeline
    own = InMemorySpanExporter()
    processor = SimpleSpanProcessor(own)
    provider = trace.get_tracer_provider()
    provider.add_span_processor(processor)
    try:
        runtime = _runtime.get_runtime()
        assert runtime.record_sink is None or runtime.record_sink.target(runtime.tracer, 40) is None
        ids = otel_decisions.record_decisions(pd.DataFrame(MIXED[:6]), type="credit.approval",
                                              subject_id_column="applicant_id")
    finally:
        from otel_decisions._sdk_layout import span_processors

        multi = provider._active_span_processor
        multi._span_processors = tuple(p for p in span_processors(provider) if p is not processor)
    seen = [s.attributes[semconv.DECISION_ID] for s in own.get_finished_spans() if s.name.startswith("decision ")]
    assert seen == list(ids)
    assert [s.attributes[semconv.DECISION_ID] for s in _decisions(memory)] == list(ids)


def test_batches_through_the_spool_are_stored_once_each_and_verify(prefect_harness, tmp_path, monkeypatch) -> None:
    """Zero-code and explicit batches through the durable spool into the embedded store, over chunk
    boundaries, with a redelivery: every valid row stored once, and ``verify`` finds the chain intact."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from otel_decisions.capture import _batch, chain
    from otel_decisions.store.client import get_client
    from otel_decisions.store.exporter import ClickHouseSpanExporter
    from otel_decisions.verify import verify
    from tests.conftest import TEST_HMAC_KEY
    from tests.seed import fresh_chdb_dsn

    monkeypatch.setattr(_batch, "CHUNK_ROWS", 5)  # every batch crosses chunk boundaries
    dsn = fresh_chdb_dsn("batch_spool")
    client = get_client(dsn, role="admin")
    chain.reset()  # this database holds the whole chain
    memory = InMemorySpanExporter()
    otel_decisions.configure(exporters=["none"], span_exporters=[ClickHouseSpanExporter(dsn), memory], durable=True,
                             hmac_key=TEST_HMAC_KEY, data_dir=str(tmp_path), service_name="capture-tests")
    instrumentor = otel_decisions.PrefectInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument()
    broken = [dict(r) for r in MIXED]
    broken[11]["confidence"] = math.nan

    @task
    def predict_frame():
        return pd.DataFrame(SCORED)  # zero-code: 8 decisions

    @task
    def predict_list(n: int) -> list[dict]:
        return [dict(r) for r in SCORED[:n]]

    @task
    def explicit():
        return list(otel_decisions.record_decisions(pd.DataFrame(broken), type="credit.approval",
                                                    subject_id_column="applicant_id", **BATCH_CONSTANTS))

    @flow
    def nightly():
        predict_frame()
        predict_list.map([2, 6]).result()
        return explicit()

    explicit_ids = nightly()
    assert explicit_ids[11] is None and sum(i is not None for i in explicit_ids) == len(MIXED) - 1
    assert otel_decisions.force_flush(120_000)
    spans = _decisions(memory)
    assert len(spans) == 8 + 2 + 6 + len(MIXED) - 1
    ClickHouseSpanExporter(dsn).export(spans[:7])  # delivered again: still one row each
    (stored, distinct) = client.query(
        "SELECT count(), uniqExact(decision_id) FROM decisions FINAL").result_rows[0]
    assert stored == distinct == len(spans)
    stored_ids = {row[0] for row in client.query("SELECT decision_id FROM decisions FINAL").result_rows}
    assert {i for i in explicit_ids if i} <= stored_ids
    report = verify(client)
    assert report.ok, report


def test_a_batch_the_spool_refuses_is_raised_and_leaves_no_gap(prefect_harness, tmp_path) -> None:
    """At a full spool with quota_policy=fail, record_decisions raises the refusal; the rows written before
    it are records (delivered, chain intact), the refused ones are not links of the chain."""
    from otel_decisions.capture import chain
    from otel_decisions.delivery import SpoolQuotaError
    from otel_decisions.store.client import get_client
    from otel_decisions.store.exporter import ClickHouseSpanExporter
    from otel_decisions.verify import verify
    from tests.conftest import TEST_HMAC_KEY
    from tests.seed import fresh_chdb_dsn

    dsn = fresh_chdb_dsn("batch_refused")
    client = get_client(dsn, role="admin")
    chain.reset()
    otel_decisions.configure(exporters=["none"], span_exporters=[ClickHouseSpanExporter(dsn)], durable=True,
                             hmac_key=TEST_HMAC_KEY, data_dir=str(tmp_path), service_name="capture-tests",
                             spool_quota_bytes=1 << 16, quota_policy="fail")
    rows = [dict(MIXED[i % 4], applicant_id=f"APP-SYN-{i:05d}") for i in range(400)]  # ~640 KB of records
    with pytest.raises(SpoolQuotaError):
        otel_decisions.record_decisions(rows, type="credit.approval", subject_id_column="applicant_id")
    kept = chain._seq  # links this process made: only the records the spool took
    assert 0 < kept < len(rows)
    assert otel_decisions.force_flush(120_000)
    stored = client.query("SELECT count() FROM decisions FINAL").result_rows[0][0]
    assert stored == kept
    report = verify(client)
    assert report.ok, report


def test_a_polars_frame_records_what_record_decision_records(captured) -> None:
    pl = pytest.importorskip("polars")
    rows = [{("subject_id" if k == "applicant_id" else k): v for k, v in r.items() if k != "missing"}
            for r in MIXED[:5]]

    @task
    def predict():
        return pl.DataFrame(rows)  # zero-code: a polars frame returned

    @task
    def predict_one_by_one():
        return [otel_decisions.record_decision(
            type="predict", outcome=r["decision"], confidence=r["confidence"], subject_id=r["subject_id"],
            inputs={k: v for k, v in r.items() if k not in ("decision", "confidence", "subject_id")}).id
            for r in rows]

    @flow
    def f():
        return predict(), predict_one_by_one()

    frame, single_ids = f()
    assert frame.shape == (5, len(rows[0]))  # the task's result, unchanged
    spans = _decisions(captured)
    by_id = {s.attributes[semconv.DECISION_ID]: s for s in spans}
    batch = [s for s in spans if s.attributes[semconv.DECISION_ID] not in single_ids]
    assert len(batch) == 5
    run_specific = (semconv.DECISION_SOURCE, semconv.PREFECT_TASK_RUN_ID, semconv.PREFECT_TASK_NAME)
    for span, single_id in zip(batch, single_ids, strict=True):
        got = {k: v for k, v in _comparable(span).items() if k not in run_specific}
        expected = {k: v for k, v in _comparable(by_id[single_id]).items() if k not in run_specific}
        assert got == expected
        assert span.attributes[semconv.DECISION_SOURCE] == "auto"


def test_a_batch_past_midnight_takes_each_day_s_retention_term(pipeline, monkeypatch) -> None:
    """Every row on a new 'day' (the day made a nanosecond long): each takes the retention path of a new
    day, and its record is still the one record_decision makes (in the same attribute order)."""
    from otel_decisions.capture import _engine

    _kind, memory = pipeline
    monkeypatch.setattr(_engine, "_DAY_NS", 1)
    rows = [{k: v for k, v in r.items()} for r in MIXED[:4]]
    batch = otel_decisions.record_decisions(rows, type="credit.approval", subject_id_column="applicant_id",
                                            retention_class="reg-b-25m", **BATCH_CONSTANTS)
    singles = [otel_decisions.record_decision(
        type="credit.approval", outcome=r["decision"], confidence=r["confidence"], subject_id=r["applicant_id"],
        inputs={k: v for k, v in r.items() if k not in ("decision", "confidence", "applicant_id")},
        retention_class="reg-b-25m", **BATCH_CONSTANTS).id for r in rows]
    by_id = {s.attributes[semconv.DECISION_ID]: s for s in _decisions(memory)}
    for batch_id, single_id in zip(batch, singles, strict=True):
        assert list(_comparable(by_id[batch_id]).items()) == list(_comparable(by_id[single_id]).items())
        assert semconv.DECISION_RETENTION_UNTIL in by_id[batch_id].attributes
