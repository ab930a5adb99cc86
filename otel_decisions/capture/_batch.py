"""``record_decisions``: one decision per row of a batch (a pandas or polars DataFrame, a pyarrow Table,
or a list of dicts / dataclasses / pydantic models), in row order.

Each row becomes exactly the record :func:`record_decision` makes for it: the same validation, privacy
pipeline, digests, pseudonyms and integrity chain, built by the batch engine
(:mod:`otel_decisions.capture._engine`) a chunk of ``CHUNK_ROWS`` rows at a time, so a frame of any
size is never copied whole into Python objects. The outcome and
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
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from otel_decisions import _runtime, semconv
from otel_decisions.capture._engine import Plan, record_chunks
from otel_decisions.capture._model import _DECISION_FIELDS, Decision
from otel_decisions.capture._shape import _ALIASES, as_mapping
from otel_decisions.errors import DecisionValidationError
from otel_decisions.settings import DEFAULT_CONFIDENCE_FIELDS, DEFAULT_OUTCOME_FIELDS

__all__ = [
    "CHUNK_ROWS",
    "BatchDecisions",
    "batch_chunks",
    "batch_rows",
    "capture_batch",
    "note_auto_captured",
    "record_decisions",
]

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


def batch_chunks(
    value: Any, chunk: int | None = None
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]] | None:
    """The rows of a batch value a chunk at a time, as ``(column names, rows as value tuples)``, or None when
    *value* is not a batch: a pandas or polars DataFrame, a pyarrow Table or RecordBatch (read column by
    column, a chunk at a time), or a list / tuple whose every item is a mapping, dataclass or pydantic model
    (consecutive rows with the same keys make a chunk). *chunk*: rows per chunk (default ``CHUNK_ROWS``)."""
    chunk = chunk or CHUNK_ROWS
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(value, pandas.DataFrame):
        names = tuple(value.columns)
        return _column_chunks(len(value), chunk, names, lambda start, stop: _pandas_columns(value, start, stop))
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(value, (pyarrow.Table, pyarrow.RecordBatch)):
        names = tuple(value.column_names)
        return _column_chunks(
            value.num_rows,
            chunk,
            names,
            lambda start, stop: [column.to_pylist() for column in value.slice(start, stop - start).columns],
        )
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(value, polars.DataFrame):
        return batch_chunks(value.to_arrow(), chunk)
    if isinstance(value, (list, tuple)) and value:
        mappings = [as_mapping(row) for row in value]
        if all(m is not None for m in mappings):
            return _mapping_chunks([m for m in mappings if m is not None], chunk)
    return None


def _pandas_columns(frame: Any, start: int, stop: int) -> list[list[Any]]:
    part = frame.iloc[start:stop]
    return [part.iloc[:, j].tolist() for j in range(part.shape[1])]


def _column_chunks(
    total: int, size: int, names: tuple[Any, ...], columns_of: Any
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    for start in range(0, total, size):
        stop = min(total, start + size)
        columns = columns_of(start, stop)
        yield names, (list(zip(*columns, strict=True)) if columns else [()] * (stop - start))


def _mapping_chunks(
    mappings: list[Mapping[str, Any]], size: int
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    names: tuple[Any, ...] | None = None
    rows: list[tuple[Any, ...]] = []
    for mapping in mappings:
        keys = tuple(mapping)
        if keys != names or len(rows) >= size:
            if rows and names is not None:
                yield names, rows
            names, rows = keys, []
        rows.append(tuple(mapping.values()))
    if rows and names is not None:
        yield names, rows


def batch_rows(value: Any, chunk: int | None = None) -> Iterator[Mapping[str, Any]] | None:
    """The rows of a batch value (see :func:`batch_chunks`) as mappings, or None when it is not a batch."""
    chunks = batch_chunks(value, chunk)
    if chunks is None:
        return None
    return (dict(zip(names, row, strict=True)) for names, rows in chunks for row in rows)


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
    source = batch_chunks(rows)
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
    plan = Plan(
        type, outcome_keys, confidence_keys, subject_id_column, per_row, include, set(inputs_exclude), fields, False
    )
    return _record(source, plan, semconv.DecisionSource.EXPLICIT, "record_decisions got")


def _record(
    chunks: Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]],
    plan: Plan,
    source_kind: semconv.DecisionSource,
    what: str,
) -> BatchDecisions:
    result = BatchDecisions()
    ids, invalid = record_chunks(chunks, plan, source_kind)
    result.extend(ids)
    result.invalid.extend(invalid)
    if result.invalid:
        shown = "; ".join(f"row {n}: {field}: {problem}" for n, field, problem in result.invalid[:_REPORTED_ROWS])
        more = f" (and {len(result.invalid) - _REPORTED_ROWS} more)" if len(result.invalid) > _REPORTED_ROWS else ""
        logger.warning(
            "otel-decisions: %s %d rows; %d were not recorded as decisions (%s%s), the others were",
            what,
            len(result),
            len(result.invalid),
            shown,
            more,
        )
    return result


def _columns(value: Any, rows: list[Mapping[str, Any]] | None) -> list[str]:
    """The column names of a batch value (without reading its rows)."""
    for attribute in ("column_names", "columns"):
        names = getattr(value, attribute, None)
        if names is not None and not callable(names):
            return [str(n) for n in names]
    return list(rows[0]) if rows else []


_recent_auto: deque[Any] = deque(maxlen=4096)
"""Values zero-code capture recorded lately (strong references): a task returning the results of the tasks it
called returns decisions already recorded, which must not be recorded again as a batch."""


def note_auto_captured(value: Any) -> None:
    _recent_auto.append(value)


def capture_batch(value: Any, *, task_name: str, settings: Any) -> BatchDecisions | None:
    """Zero-code capture of a task's batch return: one decision per row when the rows carry an outcome and a
    confidence column of the field mapping, else None (nothing recorded). The inputs are the row's other
    columns (``batch_inputs_include`` / ``batch_inputs_exclude``), the subject id the ``batch_subject_id_column``
    (or a ``subject_id`` / ``subject`` column), other decision fields their usual columns (``reasons``,
    ``model_version``, ...)."""
    if not settings.auto_capture_batches:
        return None
    outcome_keys = list(settings.outcome_fields or DEFAULT_OUTCOME_FIELDS)
    listed = value if isinstance(value, (list, tuple)) else None
    if listed is not None:
        # most tasks return lists that are not decisions: tell from the first row, before any pass over all
        first = as_mapping(listed[0]) if listed else None
        if first is None or not any(k in first for k in outcome_keys):
            return None
        if any(isinstance(item, Decision) and item.timestamp_ns is not None for item in listed):
            return None  # recorded already (record_decision's return values)
        seen = {id(recent) for recent in _recent_auto}  # held: no id is reused while listed
        if any(id(item) in seen for item in listed):
            return None  # the decisions of tasks this task called, recorded when they returned
    source = batch_chunks(value)
    if source is None:
        return None
    mappings = None
    if listed is not None:
        mappings = [m for m in (as_mapping(item) for item in listed) if m is not None]
    names = _columns(value, mappings)
    confidence_keys = list(settings.confidence_fields or DEFAULT_CONFIDENCE_FIELDS)
    outcome_key = next((k for k in outcome_keys if k in names), None)
    confidence_key = next((k for k in confidence_keys if k in names), None)
    if outcome_key is None or confidence_key is None:
        return None
    if mappings is not None and not all(outcome_key in m and confidence_key in m for m in mappings):
        return None  # a list mixing decisions and other rows: not a batch of decisions
    subject = settings.batch_subject_id_column
    if subject is not None and subject not in names:
        logger.warning(
            "otel-decisions: task %r returned a batch without the subject id column %r "
            "(batch_subject_id_column): its decisions are recorded without a subject",
            task_name,
            subject,
        )
        subject = None
    per_row: dict[str, str] = {}
    taken = {outcome_key, confidence_key, subject}
    for field, aliases in _ALIASES.items():
        if field == "subject_id" and subject is not None:
            continue
        column = next((a for a in aliases if a in names and a not in taken), None)
        if column is not None:
            per_row[field] = column
            taken.add(column)
    default_type = task_name if settings.default_decision_type == "task" else settings.default_decision_type
    include = None if settings.batch_inputs_include is None else set(settings.batch_inputs_include)
    plan = Plan(
        default_type,
        [outcome_key],
        [confidence_key],
        subject,
        per_row,
        include,
        set(settings.batch_inputs_exclude),
        {},
        True,
    )
    return _record(source, plan, semconv.DecisionSource.AUTO, f"task {task_name!r} returned")


def type_name(value: Any) -> str:
    return f"{type(value).__module__}.{type(value).__qualname__}"
