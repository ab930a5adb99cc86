"""The batch engine behind ``record_decisions`` and zero-code batch capture: a chunk of rows in, one
decision record per valid row out, each exactly the record :func:`record_decision` makes for it.

Per chunk, the work that is the same for every row is done once: the decision fields given for the
whole batch go through the masking path once (a template record), the key policy once per column
(:class:`otel_decisions.privacy.ColumnMasker`), free-text scrubbing once per distinct text, the
retention term once per day. Per row remain the inputs digest and pseudonym (two HMACs), the stored
inputs JSON, the record digest and the chain link. A row the column path cannot vouch for (a value
that is not a plain string, number, flag or null, a value masked in the row found in another of its
texts, a per-row field other than outcome, confidence and subject) is built by the per-call path
(:func:`decision_attributes`), so every row's record is the per-call one by construction or by the
column path's own rules, which ``tests/test_batch.py`` holds equal to it.

The chunk's records are then sealed into the chain as consecutive links and, while the pipeline is
the one ``configure()`` built, written to the durable spool a block per ``write(2)`` as the spans the
SDK would have spooled (``otel_decisions._runtime.RecordSink``); otherwise each becomes an SDK span.
"""

from __future__ import annotations

import gc
import operator
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import TraceFlags

from otel_decisions import _runtime, semconv
from otel_decisions._runtime import take_refusal
from otel_decisions._sdk_layout import sampled_span_ids
from otel_decisions.capture._model import Decision, new_ids
from otel_decisions.capture._record import (
    _DECISION_SPEC,
    _record_span,
    _retention,
    chain,
    decision_attributes,
    note_unsampled,
)
from otel_decisions.capture._registry import prefect_identity, registry
from otel_decisions.errors import DecisionValidationError
from otel_decisions.integrity import RecordDigester, record_digest
from otel_decisions.privacy import ColumnMasker, FieldKind, run_values

_DAY_NS = 86_400 * 10**9
_TEXT_KINDS = (FieldKind.TEXT, FieldKind.TEXT_LIST)
_INTEGRITY_KEYS = 4
_VARYING = (
    semconv.DECISION_ID,
    semconv.DECISION_INPUTS_DIGEST,
    semconv.DECISION_INPUTS,
    semconv.DECISION_OUTCOME,
    semconv.DECISION_CONFIDENCE,
    semconv.DECISION_SUBJECT_ID,
    semconv.DECISION_REDACTED,
)
"""The attributes of a column-path record that are its own; the others are its layout's template."""
_RETENTION_KEYS = (
    semconv.DECISION_RETENTION_BASIS,
    semconv.DECISION_RETENTION_POLICY,
    semconv.DECISION_RETENTION_OBLIGATION_UNTIL,
    semconv.DECISION_RETENTION_UNTIL,
)


@dataclass(frozen=True)
class Plan:
    """How a batch's rows become decisions: which column is which field, what is an input."""

    decision_type: str
    outcome_keys: Sequence[str]
    confidence_keys: Sequence[str]
    subject_column: str | None
    per_row: Mapping[str, str]
    include: set[str] | None
    exclude: set[str]
    constants: Mapping[str, Any]
    optional: bool
    """Per-row fields found by their alias are left out where the row has none."""


def _outside_unit(value: Any) -> bool:
    try:
        return not 0.0 <= float(value) <= 1.0
    except (TypeError, ValueError):
        return False


def row_decision(row: Mapping[str, Any], plan: Plan) -> Decision:
    """The :class:`Decision` of one row (the per-call path); raises ``DecisionValidationError`` for a bad row."""
    outcome_keys, confidence_keys, per_row = plan.outcome_keys, plan.confidence_keys, plan.per_row
    subject_column, optional = plan.subject_column, plan.optional
    outcome_key = next((k for k in outcome_keys if k in row), None)
    if outcome_key is None:
        raise DecisionValidationError("outcome", f"no outcome column: none of {', '.join(outcome_keys)} in the row")
    confidence_key = next((k for k in confidence_keys if k in row), None)
    used = {outcome_key, *per_row.values()}
    values: dict[str, Any] = {"type": plan.decision_type, **plan.constants, "outcome": row[outcome_key]}
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
        if row[column] is not None or not optional:
            values[field] = row[column]
    if confidence_key == "score" and "confidence" in values and _outside_unit(values["confidence"]):
        values["score"] = values.pop("confidence")  # a raw score, not a probability (as zero-code capture reads it)
    values["inputs"] = {
        key: value
        for key, value in row.items()
        if key not in used and key not in plan.exclude and (plan.include is None or key in plan.include)
    }
    return Decision(**values)


def _tuples(attrs: dict[str, Any]) -> dict[str, Any]:
    """*attrs* with lists as tuples, as the SDK keeps span attributes."""
    for key, value in attrs.items():
        if type(value) is list:
            attrs[key] = tuple(value)
    return attrs


Built = tuple[str, int, dict[str, Any], str, int, str]
"""A row's record before sealing: (decision id, time, attributes, span name, row number, record digest)."""


class _Layout:
    """The column path for one set of column names, or ``usable=False`` (every row takes the per-call path)."""

    usable = False

    def __init__(self, batch: _Batch, names: tuple[Any, ...]) -> None:
        plan, runtime = batch.plan, batch.runtime
        if plan.per_row or batch.template is None or any(type(n) is not str for n in names):
            return
        position = {name: j for j, name in enumerate(names)}
        outcome = next((k for k in plan.outcome_keys if k in position), None)
        confidence = next((k for k in plan.confidence_keys if k in position), None)
        subject = plan.subject_column
        if outcome is None or (subject is not None and subject not in position):
            return
        used = {outcome, confidence, subject}
        inputs = [
            name
            for name in names
            if name not in used and name not in plan.exclude and (plan.include is None or name in plan.include)
        ]
        self.outcome = position[outcome]
        self.confidence = None if confidence is None else position[confidence]
        self.subject = None if subject is None else position[subject]
        indices = [position[name] for name in inputs]
        getter: Callable[[tuple[Any, ...]], Sequence[Any]]
        if len(indices) > 1:
            getter = operator.itemgetter(*indices)
        elif indices:
            only = indices[0]
            getter = lambda row: (row[only],)  # noqa: E731
        else:
            getter = lambda row: ()  # noqa: E731
        self.inputs = getter
        template = batch.template
        # the template: this layout's record with placeholders where each row has its own value
        fields: dict[str, Any] = {"outcome": "-", "inputs": {}}
        if self.confidence is not None:
            fields["confidence"] = 0.5
        if self.subject is not None:
            fields["subject_id"] = "-"
        placeholder = Decision(**{**_fields_of(template), **fields, "id": template.id})
        now = time.time_ns()
        attrs, _record = decision_attributes(runtime, placeholder, batch.source, True, now)
        redacted = list(attrs.get(semconv.DECISION_REDACTED, ()))
        self.redacted_before = [p for p in redacted if p == "type"]  # type is masked before the outcome
        self.redacted_after = [p for p in redacted if p != "type"]
        keys = list(attrs)
        if semconv.DECISION_REDACTED not in attrs:
            at = keys.index(semconv.DECISION_RETENTION_BASIS)
            keys.insert(at, semconv.DECISION_REDACTED)
        attrs[semconv.DECISION_REDACTED] = ()
        attrs.update(batch.identity)
        self.template = _tuples({key: attrs[key] for key in [*keys, *batch.identity]})
        self.retention_keys = [k for k in keys if k in _RETENTION_KEYS]  # the term's (not retention.class)
        varying = {*_VARYING, *self.retention_keys, *_RETENTION_KEYS}
        self.digester = RecordDigester({k: v for k, v in self.template.items() if k not in varying}, varying)
        # a row of this layout has these varying keys, and the redacted paths or not: one format per record
        present = sorted(k for k in self.template if k in varying)
        self.digest_keys = {
            True: (present, self.digester.for_keys(present)),
            False: (
                [k for k in present if k != semconv.DECISION_REDACTED],
                self.digester.for_keys([k for k in present if k != semconv.DECISION_REDACTED]),
            ),
        }
        self.day = now // _DAY_NS
        self.name = semconv.DECISION_SPAN_PREFIX + attrs[semconv.DECISION_TYPE]
        constant_texts: list[str] = []
        for _key, _path, kind, field in _DECISION_SPEC:
            if kind in _TEXT_KINDS and field not in ("outcome", "subject_id"):
                value = getattr(placeholder, field)
                if value is None:
                    continue
                constant_texts.extend(value if kind is FieldKind.TEXT_LIST else [value])
        self.masker = ColumnMasker(
            runtime.privacy, inputs, capture_inputs=runtime.settings.capture_inputs, constant_texts=constant_texts
        )
        self.usable = self.masker.usable and (placeholder.output is None or not runtime.settings.capture_output)

    def retention_for(self, batch: _Batch, now: int) -> dict[str, Any] | None:
        """The retention attributes for a record at *now* when its day is not the template's."""
        day = now // _DAY_NS
        if day == self.day:
            return None
        cached = batch.retention_days.get(day)
        if cached is None:
            cached = batch.retention_days[day] = _retention(batch.runtime, batch.template, now)  # type: ignore[arg-type]
        return cached


def _fields_of(decision: Decision) -> dict[str, Any]:
    return {
        name: value
        for name, value in decision.__dict__.items()
        if name not in ("timestamp_ns", "trace_id", "span_id", "inputs")
    }


class _Batch:
    """One ``record_decisions`` call (or one task's batch return): its plan, template and caches."""

    def __init__(self, plan: Plan, source: semconv.DecisionSource) -> None:
        self.plan = plan
        self.source = source
        self.runtime = _runtime.get_runtime()
        self.identity = prefect_identity()
        self.layouts: dict[tuple[Any, ...], _Layout] = {}
        self.retention_days: dict[int, dict[str, Any]] = {}
        try:
            self.template: Decision | None = Decision(type=plan.decision_type, outcome="-", **plan.constants)
        except DecisionValidationError:
            self.template = None  # each row reports the bad field (the per-call path)

    def layout(self, names: tuple[Any, ...]) -> _Layout:
        layout = self.layouts.get(names)
        if layout is None:
            layout = self.layouts[names] = _Layout(self, names)
        return layout

    def build(
        self, names: tuple[Any, ...], rows: Sequence[tuple[Any, ...]], first: int, invalid: list[tuple[int, str, str]]
    ) -> tuple[list[Built], set[str]]:
        """Each valid row's (decision id, time, attributes, span name, row number), and the values masked."""
        layout = self.layout(names)
        built: list[Built] = []
        masked: set[str] = set()
        append = built.append
        time_ns = time.time_ns
        if layout.usable:
            pseudonymise = self.runtime.privacy.pseudonymise
            row_masking = layout.masker.row
            inputs_of = layout.inputs
            oi, ci, si = layout.outcome, layout.confidence, layout.subject
            template = layout.template
            before, after = layout.redacted_before, layout.redacted_after
            digest_of = layout.digester.digest
            render = layout.digester.render
            with_redacted, without_redacted = layout.digest_keys[True], layout.digest_keys[False]
            fresh_ids = iter(new_ids(len(rows)))
            for offset, row in enumerate(rows):
                outcome = row[oi]
                if type(outcome) is str and outcome.strip():
                    confidence = None if ci is None else row[ci]
                    subject = None if si is None else row[si]
                    if (ci is None or (type(confidence) is float and 0.0 <= confidence <= 1.0)) and (
                        si is None or type(subject) is str
                    ):
                        masking = row_masking(inputs_of(row), outcome)
                        if masking is not None:
                            digest, stored, redacted, secrets, outcome_text, outcome_changed = masking
                            attrs = template.copy()
                            decision_id = attrs[semconv.DECISION_ID] = next(fresh_ids)
                            attrs[semconv.DECISION_INPUTS_DIGEST] = digest
                            if stored is not None:
                                attrs[semconv.DECISION_INPUTS] = stored
                            attrs[semconv.DECISION_OUTCOME] = outcome_text
                            if ci is not None:
                                attrs[semconv.DECISION_CONFIDENCE] = confidence
                            if si is not None:
                                attrs[semconv.DECISION_SUBJECT_ID] = pseudonymise(subject)
                            if outcome_changed:
                                redacted = [*redacted, *before, "outcome", *after]
                            elif before or after:
                                redacted = [*redacted, *before, *after]
                            if redacted:
                                attrs[semconv.DECISION_REDACTED] = tuple(redacted)
                            else:
                                del attrs[semconv.DECISION_REDACTED]
                            now = time_ns()
                            if now // _DAY_NS != layout.day:  # past midnight: the term of the new day
                                retention = layout.retention_for(self, now) or {}
                                if retention.keys() != set(layout.retention_keys):
                                    for key in layout.retention_keys:
                                        del attrs[key]
                                attrs.update(retention)  # (in place when the keys are the same)
                                digest = digest_of(attrs)
                            else:
                                keys, digest_texts = with_redacted if redacted else without_redacted
                                digest = digest_texts([render(attrs[key]) for key in keys])
                            if secrets:
                                masked.update(secrets)
                            append((decision_id, now, attrs, layout.name, first + offset, digest))
                            continue
                self._per_call(names, row, first + offset, built, masked, invalid)
        else:
            for offset, row in enumerate(rows):
                self._per_call(names, row, first + offset, built, masked, invalid)
        return built, masked

    def _per_call(
        self,
        names: tuple[Any, ...],
        row: tuple[Any, ...],
        number: int,
        built: list[Built],
        masked: set[str],
        invalid: list[tuple[int, str, str]],
    ) -> None:
        try:
            decision = row_decision(dict(zip(names, row, strict=True)), self.plan)
        except DecisionValidationError as exc:
            invalid.append((number, exc.field, exc.problem))
            return
        now = time.time_ns()
        attrs, record = decision_attributes(self.runtime, decision, self.source, True, now)
        attrs.update(self.identity)
        masked.update(record.masked_values)
        name = semconv.DECISION_SPAN_PREFIX + attrs[semconv.DECISION_TYPE]
        built.append((decision.id, now, _tuples(attrs), name, number, record_digest(attrs)))


def record_chunks(
    chunks: Iterable[tuple[tuple[Any, ...], list[tuple[Any, ...]]]], plan: Plan, source: semconv.DecisionSource
) -> tuple[list[str | None], list[tuple[int, str, str]]]:
    """Record every valid row of *chunks*; returns the decision ids in row order (None for an invalid row)
    and the invalid rows' ``(row number, field, problem)``. A refusal by the store is raised (the rows
    before it are recorded)."""
    paused = gc.isenabled()
    if paused:  # a batch allocates millions of short-lived containers: collect once, after it
        gc.disable()
    try:
        return _record_chunks(chunks, plan, source)
    finally:
        if paused:
            gc.enable()


def _record_chunks(
    chunks: Iterable[tuple[tuple[Any, ...], list[tuple[Any, ...]]]], plan: Plan, source: semconv.DecisionSource
) -> tuple[list[str | None], list[tuple[int, str, str]]]:
    batch = _Batch(plan, source)
    ids: list[str | None] = []
    invalid: list[tuple[int, str, str]] = []
    flow_run = batch.identity.get(semconv.PREFECT_FLOW_RUN_ID)
    task_run = batch.identity.get(semconv.PREFECT_TASK_RUN_ID)
    for names, rows in chunks:
        first = len(ids)
        built, masked = batch.build(names, rows, first, invalid)
        if masked and (flow_run or task_run):
            run_values.add((task_run, flow_run), masked)
        written, context_of, refusal = _seal_and_write(batch.runtime, built)
        chunk_ids: list[str | None] = [None] * len(rows)
        for decision_id, _now, _attrs, _name, number, _digest in built[:written]:
            chunk_ids[number - first] = decision_id
        ids.extend(chunk_ids)
        registry.add_many(
            [
                (decision_id, now, attrs[semconv.DECISION_OUTCOME], attrs)
                for decision_id, now, attrs, _n, _r, _d in built[:written]
            ],
            context_of,
            flow_run,
            task_run,
        )
        if refusal is not None:
            raise refusal
    return ids, invalid


def _seal_and_write(runtime: Any, built: list[Built]) -> tuple[int, Callable[[int], tuple[Any, ...]], Exception | None]:
    """Seal *built* into the chain and record it: how many were recorded (a prefix), their span contexts by
    index, and the refusal that stopped the rest (None: all were)."""
    count = len(built)
    if not count:
        return 0, _no_context, None
    sink = runtime.record_sink
    widest = max(len(entry[2]) for entry in built) + _INTEGRITY_KEYS
    target = sink.target(runtime.tracer, widest) if sink is not None and runtime.decisions_always_sampled else None
    if target is None:  # another pipeline: an SDK span each, as record_decision makes
        contexts: list[tuple[Any, ...]] = []
        for decision_id, now, attrs, name, _row, _digest in built:
            try:
                ctx = _record_span(runtime, name, attrs, decision_id, now)
            except Exception as exc:  # noqa: BLE001 - handed back with the records kept before it
                return len(contexts), contexts.__getitem__, exc
            note_unsampled(runtime, ctx)
            contexts.append((ctx.trace_id, ctx.span_id, ctx.is_remote, ctx.trace_flags, ctx.trace_state))
        return count, contexts.__getitem__, None
    parent = trace.get_current_span().get_span_context()
    parent_context = parent if parent.is_valid else None
    trace_ids, span_ids, flags = sampled_span_ids(runtime.tracer, parent_context, count)
    state = parent_context.trace_state if parent_context is not None else None
    state_items = tuple(state.items()) if state else None
    parent_tuple = (
        None
        if parent_context is None
        else (parent.trace_id, parent.span_id, int(parent.trace_flags), state_items, parent.is_remote)
    )
    take_refusal()  # a refusal left over from some other span is not these records'
    chain_id, first_seq, hashes, before = chain.link_many(
        [(decision_id, now, digest) for decision_id, now, _a, _n, _r, digest in built]
    )
    records = []
    previous = before
    for index, (_id, now, attrs, name, _row, _digest) in enumerate(built):
        attrs[semconv.DECISION_INTEGRITY_CHAIN] = chain_id
        attrs[semconv.DECISION_INTEGRITY_SEQ] = first_seq + index
        attrs[semconv.DECISION_INTEGRITY_HASH] = current = hashes[index]
        attrs[semconv.DECISION_INTEGRITY_PREV_HASH] = previous
        previous = current
        records.append((name, (trace_ids[index], span_ids[index], flags, state_items), parent_tuple, now, attrs))
    written, refusal = count, None
    try:
        written, refusal = sink.write(records, *target)
    except Exception as exc:  # noqa: BLE001 - nothing was written: handed back as a refusal
        written, refusal = 0, exc
    finally:
        if written < count:  # refused: not records, so not gaps (unless another thread linked after them)
            chain.unlink_from(first_seq + written, hashes[written - 1] if written else before, count - written)
        chain.ended(count)
    trace_flags = TraceFlags(flags)

    def context_of(index: int) -> tuple[Any, ...]:
        return trace_ids[index], span_ids[index], False, trace_flags, state

    return written, context_of, refusal


def _no_context(index: int) -> tuple[Any, ...]:
    raise IndexError(index)
