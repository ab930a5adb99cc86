"""``record_decisions``: one decision per row of a batch (a pandas or polars DataFrame, a pyarrow Table,
or a list of dicts / dataclasses / pydantic models), in row order.

Each row becomes exactly the record :func:`record_decision` makes for it: the same validation, privacy
pipeline, digests, pseudonyms and integrity chain (the rows go through the one recording path, a
chunk at a time, so a frame of any size is never copied whole into Python objects). The outcome and
confidence columns are found by the same field mapping as zero-code capture (``outcome_fields``,
``confidence_fields``) unless named; the inputs are the row's other columns (``inputs_include`` /
``inputs_exclude``); the subject id comes from ``subject_id_column``. A row that fails validation is
not recorded and is reported with its row number (``BatchDecisions.invalid``, and one warning);
the other rows are recorded.

Example::

    from otel_decisions import record_decisions

    ids = record_decisions(scored_df, type="credit.approval", subject_id_column="applicant_id",
                           model_name="credit-lr", model_version="3.2.0", threshold=0.5)
    ids.invalid      # [(row, field, problem), ...] for rows that were not recorded
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from otel_decisions import _runtime, semconv
from otel_decisions.capture._model import _DECISION_FIELDS, Decision
from otel_decisions.capture._record import emit
from otel_decisions.capture._shape import as_mapping
from otel_decisions.errors import DecisionValidationError
from otel_decisions.settings import DEFAULT_CONFIDENCE_FIELDS, DEFAULT_OUTCOME_FIELDS

__all__ = ["CHUNK_ROWS", "BatchDecisions", "batch_rows", "record_decisions"]

logger = logging.getLogger("otel_decisions")

CHUNK_ROWS = 16_384
"""Rows turned into Python values at a time: a frame's memory is never doubled whole."""
_REPORTED_ROWS = 20


class BatchDecisions(list[str | None]):
    """The decision ids in row order (``None`` for a row that was not recorded), and ``invalid``:
    ``(row number, field, problem)`` for each row that failed validation."""

    def __init__(self) -> None:
        super().__init__()
        self.invalid: list[tuple[int, str, str]] = []

    @property
    def recorded(self) -> int:
        return len(self) - len(self.invalid)


def batch_rows(value: Any, chunk: int = CHUNK_ROWS) -> Iterator[Mapping[str, Any]] | None:
    """The rows of a batch value as mappings, a chunk at a time, or None when *value* is not a batch: a
    pandas or polars DataFrame, a pyarrow Table or RecordBatch, or a list / tuple whose every item is a
    mapping, dataclass or pydantic model."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        return _chunks(len(value), chunk, lambda start, stop: value.iloc[start:stop].to_dict("records"))
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(value, (pyarrow.Table, pyarrow.RecordBatch)):
        return _chunks(value.num_rows, chunk, lambda start, stop: value.slice(start, stop - start).to_pylist())
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(value, polars.DataFrame):
        return batch_rows(value.to_arrow(), chunk)
    if isinstance(value, (list, tuple)) and value:
        mappings = [as_mapping(row) for row in value]
        if all(m is not None for m in mappings):
            return iter([m for m in mappings if m is not None])
    return None


def _chunks(total: int, size: int, rows_of: Any) -> Iterator[Mapping[str, Any]]:
    for start in range(0, total, size):
        yield from rows_of(start, min(total, start + size))


def record_decisions(
    rows: Any,
    /,
    *,
    type: str,  # noqa: A002 - the decision field's name
    outcome_column: str | None = None,
    confidence_column: str | None = None,
    subject_id_column: str | None = None,
    columns: Mapping[str, str] | None = None,
    inputs_include: Sequence[str] | None = None,
    inputs_exclude: Sequence[str] = (),
    **fields: Any,
) -> BatchDecisions:
    """Record one decision per row of *rows* (a DataFrame, a pyarrow Table, or a list of decision-shaped
    rows) and return their ids in row order.

    *outcome_column* / *confidence_column*: the row's outcome and confidence (default: the first of the
    ``outcome_fields`` / ``confidence_fields`` settings present); *subject_id_column*: the subject's id
    (pseudonymised); *columns*: other decision fields read per row, e.g. ``{"reasons": "top_reasons"}``;
    *fields*: decision fields the same for every row (``model_version="3.2.0"``, ``threshold=0.5``, ...).
    The inputs are the row's columns not used for a decision field, filtered by *inputs_include* (only
    these) and *inputs_exclude*. Invalid rows are not recorded and are listed in ``.invalid``.
    """
    unknown = sorted(set(fields) - _DECISION_FIELDS - {"type"})
    if unknown:
        raise DecisionValidationError(
            unknown[0], f"is not a decision field; known fields: {', '.join(sorted(_DECISION_FIELDS))}"
        )
    per_row = dict(columns or {})
    bad = sorted(set(per_row) - _DECISION_FIELDS)
    if bad:
        raise DecisionValidationError(
            f"columns[{bad[0]!r}]", f"is not a decision field; known fields: {', '.join(sorted(_DECISION_FIELDS))}"
        )
    for name, given in (("inputs", fields.get("inputs")), ("subject_id", fields.get("subject_id"))):
        if given is not None:
            raise DecisionValidationError(name, "comes from each row: use inputs_include / subject_id_column")
    source = batch_rows(rows)
    if source is None:
        raise DecisionValidationError(
            "rows",
            f"expected a DataFrame, a pyarrow Table or a list of dicts / dataclasses / pydantic models, got "
            f"{type_name(rows)}",
        )
    settings = _runtime.get_runtime().settings
    outcome_keys = [outcome_column] if outcome_column else list(settings.outcome_fields or DEFAULT_OUTCOME_FIELDS)
    confidence_keys = (
        [confidence_column] if confidence_column else list(settings.confidence_fields or DEFAULT_CONFIDENCE_FIELDS)
    )
    include = None if inputs_include is None else set(inputs_include)
    exclude = set(inputs_exclude)
    result = BatchDecisions()
    for number, row in enumerate(source):
        try:
            decision = _decision(
                row, type, outcome_keys, confidence_keys, subject_id_column, per_row, include, exclude, fields
            )
        except DecisionValidationError as exc:
            result.append(None)
            result.invalid.append((number, exc.field, exc.problem))
            continue
        result.append(emit(decision, semconv.DecisionSource.EXPLICIT, True).id)
    if result.invalid:
        shown = "; ".join(f"row {n}: {field}: {problem}" for n, field, problem in result.invalid[:_REPORTED_ROWS])
        more = f" (and {len(result.invalid) - _REPORTED_ROWS} more)" if len(result.invalid) > _REPORTED_ROWS else ""
        logger.warning(
            "otel-decisions: %d of %d rows were not recorded as decisions (%s%s); the others were",
            len(result.invalid),
            len(result),
            shown,
            more,
        )
    return result


def type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"


def _decision(
    row: Mapping[str, Any],
    decision_type: str,
    outcome_keys: Sequence[str],
    confidence_keys: Sequence[str],
    subject_column: str | None,
    per_row: Mapping[str, str],
    include: set[str] | None,
    exclude: set[str],
    constants: Mapping[str, Any],
) -> Decision:
    outcome_key = next((k for k in outcome_keys if k in row), None)
    if outcome_key is None:
        raise DecisionValidationError("outcome", f"no outcome column: none of {', '.join(outcome_keys)} in the row")
    confidence_key = next((k for k in confidence_keys if k in row), None)
    used = {outcome_key, *per_row.values()}
    values: dict[str, Any] = {"type": decision_type, **constants, "outcome": row[outcome_key]}
    if confidence_key is not None:
        used.add(confidence_key)
        values["confidence"] = row[confidence_key]
    if subject_column is not None:
        if subject_column not in row:
            raise DecisionValidationError("subject_id", f"column {subject_column!r} is not in the row")
        used.add(subject_column)
        values["subject_id"] = row[subject_column]
    for field, column in per_row.items():
        if column not in row:
            raise DecisionValidationError(field, f"column {column!r} is not in the row")
        values[field] = row[column]
    values["inputs"] = {
        key: value
        for key, value in row.items()
        if key not in used and key not in exclude and (include is None or key in include)
    }
    return Decision(**values)
