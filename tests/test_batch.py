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
