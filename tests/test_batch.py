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
