"""Recording: a decision, a review or a checkpoint becomes one ended span, sealed into the chain.

Every captured value takes the one masking path (:meth:`PrivacyRecord.mask_fields`) before it
touches a span; the record is then sealed into this process's hash chain and ended, and a refusal
by the store (spool quota, disk error) is raised to the caller.

Example::

    from otel_decisions import record_decision, record_review

    d = record_decision(type="credit.approval", outcome="deny", confidence=0.91,
                        inputs={"income": 41000}, subject_id="applicant-17")
    record_review(d, reviewer="analyst-4", action="override", new_outcome="approve",
                  reason="verified additional income")
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from typing import Any

from opentelemetry.trace import Link, SpanContext, SpanKind

from otel_decisions import _runtime, semconv
from otel_decisions._runtime import take_refusal
from otel_decisions.capture._model import _ACTION_VALUES, _DECISION_FIELDS, Decision
from otel_decisions.capture._registry import prefect_identity, registry
from otel_decisions.errors import DecisionValidationError, OtelDecisionsError
from otel_decisions.integrity import HashChain, checkpoint_material, record_digest, sign
from otel_decisions.privacy import FieldKind, PrivacyRecord, run_values, to_jsonable

logger = logging.getLogger("otel_decisions")

chain = HashChain()
"""This process's hash chain (a forked child starts its own)."""

_T, _TL, _J, _V, _P = FieldKind.TEXT, FieldKind.TEXT_LIST, FieldKind.JSON, FieldKind.VALUE, FieldKind.PSEUDONYM
_DECISION_SPEC: tuple[tuple[str, str, FieldKind, str], ...] = (
    # (attribute, path in decision.redacted, how it is masked, Decision field), after the inputs
    (semconv.DECISION_TYPE, "type", _T, "type"),
    (semconv.DECISION_OUTCOME, "outcome", _T, "outcome"),
    (semconv.DECISION_OUTPUT, "output", _J, "output"),
    (semconv.DECISION_CONFIDENCE, "confidence", _V, "confidence"),
    (semconv.DECISION_SCORE, "score", _V, "score"),
    (semconv.DECISION_THRESHOLD, "threshold", _V, "threshold"),
    (semconv.DECISION_OPTIONS, "options", _TL, "options"),
    (semconv.DECISION_RATIONALE, "rationale", _T, "rationale"),
    (semconv.DECISION_REASONS, "reasons", _TL, "reasons"),
    (semconv.DECISION_SUBJECT_ID, "subject_id", _P, "subject_id"),
    (semconv.DECISION_MODEL_NAME, "model.name", _T, "model_name"),
    (semconv.DECISION_MODEL_VERSION, "model.version", _T, "model_version"),
    (semconv.DECISION_MODEL_PROVIDER, "model.provider", _T, "model_provider"),
    (semconv.DECISION_POLICY_VERSION, "policy.version", _T, "policy_version"),
    (semconv.DECISION_REGULATIONS, "regulations", _TL, "regulations"),
    (semconv.DECISION_RETENTION_CLASS, "retention.class", _T, "retention_class"),
    (semconv.DECISION_SEGMENT, "segment", _T, "segment"),
)
_MIRRORS = (
    (semconv.GEN_AI_REQUEST_MODEL, semconv.DECISION_MODEL_NAME),
    (semconv.GEN_AI_PROVIDER_NAME, semconv.DECISION_MODEL_PROVIDER),
)


def record_checkpoint() -> bool:
    """Record a signed checkpoint of this process's chain head, if it moved. Never raises.

    Called at the end of every flow run, by ``force_flush()`` and at shutdown: a record deleted
    after a checkpoint is found by ``otel-decisions verify`` even at the end of its chain.
    """
    try:
        head = chain.head_for_checkpoint()
        if head is None:
            return False
        runtime = _runtime.get_runtime()
        chain_id, seq, head_hash = head
        attrs: dict[str, Any] = {
            semconv.DECISION_INTEGRITY_CHAIN: chain_id,
            semconv.DECISION_INTEGRITY_SEQ: seq,
            semconv.DECISION_INTEGRITY_HASH: head_hash,
            semconv.DECISION_INTEGRITY_SIGNATURE: sign(
                runtime.privacy.signing_key, checkpoint_material(chain_id, seq, head_hash)
            ),
            semconv.DECISION_PSEUDONYM_KEY_ID: runtime.privacy.key_id,
        }
        runtime.tracer.start_span(semconv.CHECKPOINT_SPAN_NAME, kind=SpanKind.INTERNAL, attributes=attrs).end()
        refusal = take_refusal()
        if refusal is not None:
            raise refusal
        return True
    except Exception as exc:  # noqa: BLE001 - a checkpoint must never break the caller
        logger.warning("otel-decisions: could not record an integrity checkpoint: %s", exc)
        return False


def _seal(attrs: dict[str, Any], record_id: str, timestamp_ns: int) -> tuple[dict[str, Any], int, str]:
    """Link a finished record (every other attribute set) into this process's hash chain.

    Returns the integrity attributes to add, the link's position and the previous hash."""
    chain_id, seq, chain_hash, prev_hash = chain.link(record_id, timestamp_ns, record_digest(attrs))
    integrity = {
        semconv.DECISION_INTEGRITY_CHAIN: chain_id,
        semconv.DECISION_INTEGRITY_SEQ: seq,
        semconv.DECISION_INTEGRITY_HASH: chain_hash,
        semconv.DECISION_INTEGRITY_PREV_HASH: prev_hash,
    }
    return integrity, seq, prev_hash


def _record_span(
    runtime: Any, name: str, attrs: dict[str, Any], record_id: str, now: int, links: Sequence[Link] = ()
) -> SpanContext:
    """Record *attrs* as one ended span, sealed into the hash chain; returns its context.

    A span the sampler drops is no record, so it takes no place in the chain (a sealed-then-dropped
    link would be a permanent gap that ``verify`` reports as a deleted record). When ``configure()``
    made decision records always sampled (the default), the record is sealed first and the span
    started with every attribute; otherwise the span is started first and sealed only if it
    records (the integrity attributes are outside the record digest, so adding them after the
    start changes nothing they cover).
    """
    take_refusal()  # a refusal left over from some other span is not this record's
    if runtime.decisions_always_sampled:
        integrity, seq, prev_hash = _seal(attrs, record_id, now)
        attrs.update(integrity)
        span = runtime.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attrs, links=links, start_time=now)
        if not span.is_recording():  # e.g. the provider was shut down: not a record after all
            chain.unlink(seq, prev_hash)
            chain.ended()
            span.end(end_time=now)
            return span.get_span_context()
    else:
        span = runtime.tracer.start_span(name, kind=SpanKind.INTERNAL, attributes=attrs, links=links, start_time=now)
        if not span.is_recording():
            span.end(end_time=now)
            return span.get_span_context()
        integrity, seq, prev_hash = _seal(attrs, record_id, now)
        attrs.update(integrity)
        span.set_attributes(integrity)
    try:
        span.end(end_time=now)
        refusal = take_refusal()
        if refusal is not None:
            raise refusal
    except OtelDecisionsError:
        # The store refused the record (spool quota, disk error): not a record, so not a gap.
        # Any other exception (a timeout or cancellation arriving now) may come after the record
        # was spooled, so the link stays.
        chain.unlink(seq, prev_hash)
        raise
    finally:
        chain.ended()
    return span.get_span_context()


def _share_masked_values(record: PrivacyRecord, identity: dict[str, str]) -> None:
    """What this record masked is masked in its task run's and flow run's spans too (Prefect's own)."""
    if identity:
        masked = record.masked_values
        if masked:
            run_values.add(
                (identity.get(semconv.PREFECT_TASK_RUN_ID), identity.get(semconv.PREFECT_FLOW_RUN_ID)), masked
            )


def emit(decision: Decision, source: semconv.DecisionSource, raw_inputs_given: bool) -> Decision:
    runtime = _runtime.get_runtime()
    settings = runtime.settings
    policy = runtime.privacy
    record: PrivacyRecord = policy.new_record()
    now = time.time_ns()

    attrs: dict[str, Any] = {
        semconv.DECISION_ID: decision.id,
        semconv.DECISION_AUTOMATION: decision.automation,
        semconv.DECISION_REVIEW_REQUIRED: decision.review_required,
        semconv.DECISION_SOURCE: source.value,
        semconv.DECISION_PSEUDONYM_KEY_ID: policy.key_id,
    }
    # Inputs first: values masked there are masked in every later free-text field.
    inputs = to_jsonable(decision.inputs if raw_inputs_given else {})
    attrs[semconv.DECISION_INPUTS_DIGEST] = policy.digest_jsonable(inputs)
    fields: list[tuple[str, str, FieldKind, Any]] = [
        (semconv.DECISION_INPUTS, "inputs", FieldKind.JSONABLE if settings.capture_inputs else FieldKind.LEARN, inputs)
    ]
    fields += [
        (key, path, kind, getattr(decision, name))
        for key, path, kind, name in _DECISION_SPEC
        if settings.capture_output or key != semconv.DECISION_OUTPUT
    ]
    attrs.update(record.mask_fields(fields))
    for mirror, source_key in _MIRRORS:
        if source_key in attrs:
            attrs[mirror] = attrs[source_key]
    if record.redacted:
        attrs[semconv.DECISION_REDACTED] = record.redacted
    identity = prefect_identity()
    attrs.update(identity)
    _share_masked_values(record, identity)
    ctx = _record_span(runtime, semconv.DECISION_SPAN_PREFIX + attrs[semconv.DECISION_TYPE], attrs, decision.id, now)
    if not ctx.trace_flags.sampled:
        runtime.warn_once(
            "unsampled",
            "otel-decisions: a decision span was not recorded (no SDK tracer provider, or a sampler "
            "dropped it). Call otel_decisions.configure() at start-up so decisions are kept.",
        )
    recorded = object.__new__(Decision)  # a copy: fields are already validated, no second __post_init__
    recorded.__dict__.update(decision.__dict__)
    object.__setattr__(recorded, "timestamp_ns", now)
    object.__setattr__(recorded, "trace_id", format(ctx.trace_id, "032x"))
    object.__setattr__(recorded, "span_id", format(ctx.span_id, "016x"))
    registry.add(
        decision.id,
        ctx,
        now,
        attrs[semconv.DECISION_OUTCOME],  # the outcome as stored (scrubbed)
        identity.get(semconv.PREFECT_FLOW_RUN_ID),
        identity.get(semconv.PREFECT_TASK_RUN_ID),
    )
    return recorded


def record_decision(decision: Decision | None = None, /, **fields: Any) -> Decision:
    """Record one decision as a span and return it with its ``id``, timestamp and span ids.

    Pass a :class:`Decision`, or its fields as keywords (``type``, ``outcome``, ``confidence``,
    ``inputs``, ``reasons``, ...). Invalid fields raise ``DecisionValidationError`` (``.field`` names it); nothing
    is recorded then. Can be called many times in one task (e.g. batch scoring).
    """
    if decision is None:
        unknown = sorted(set(fields) - _DECISION_FIELDS - {"id"})
        if unknown:
            raise DecisionValidationError(
                unknown[0],
                f"unknown decision field(s) {', '.join(unknown)}; known fields: {', '.join(sorted(_DECISION_FIELDS))}",
            )
        if "type" not in fields:
            raise DecisionValidationError("type", "is required; name the kind of decision, e.g. type='credit.approval'")
        if "outcome" not in fields:
            raise DecisionValidationError("outcome", "is required; say what was decided, e.g. outcome='approve'")
        decision = Decision(**fields)
        inputs_given = "inputs" in fields
    else:
        if fields:
            decision = dataclasses.replace(decision, **fields)
        inputs_given = decision.inputs is not None
    return emit(decision, semconv.DecisionSource.EXPLICIT, inputs_given)


def record_review(
    decision: Decision | str,
    /,
    *,
    reviewer: str,
    action: str | semconv.ReviewAction,
    reason: str | None = None,
    new_outcome: str | None = None,
    original_outcome: str | None = None,
) -> str:
    """Record a human review or override of *decision* (a :class:`Decision` or its id).

    Makes a ``decision.review`` span carrying ``decision.id`` and a link to the decision's span
    (when known: the decision object carries it, or it was recorded in this process). Works from
    a later flow run. Returns the review id.
    """
    if isinstance(decision, Decision):
        decision_id = decision.id
        link_ctx = decision.span_context
        decided_at = decision.timestamp_ns
        original = original_outcome
    else:
        decision_id = str(decision)
        link_ctx, decided_at, original = None, None, original_outcome
    try:
        uuid.UUID(decision_id)
    except ValueError:
        raise DecisionValidationError(
            "decision", f"{decision_id!r} is not a decision id (UUID); pass the Decision returned by record_decision"
        ) from None
    if not reviewer or not str(reviewer).strip():
        raise DecisionValidationError("reviewer", "is required; pass the reviewer's user id (it is pseudonymised)")
    action_value = action.value if isinstance(action, semconv.ReviewAction) else str(action)
    if action_value not in _ACTION_VALUES:
        raise DecisionValidationError("action", f"{action_value!r} is not one of {sorted(_ACTION_VALUES)}")
    if action_value == semconv.ReviewAction.OVERRIDE.value and not new_outcome:
        raise DecisionValidationError("new_outcome", "an override needs the outcome the reviewer chose")
    known = registry.lookup(decision_id)
    if known is not None:
        link_ctx = link_ctx or known[0]
        decided_at = decided_at or known[1]
        original = original or known[2]
    if original is None and isinstance(decision, Decision):
        original = decision.outcome

    runtime = _runtime.get_runtime()
    policy = runtime.privacy
    record = policy.new_record()
    review_id = str(uuid.uuid4())
    attrs: dict[str, Any] = {
        semconv.DECISION_ID: decision_id,
        semconv.DECISION_REVIEW_ID: review_id,
        semconv.DECISION_REVIEW_ACTION: action_value,
        semconv.DECISION_PSEUDONYM_KEY_ID: policy.key_id,
    }
    learned = decision.inputs if isinstance(decision, Decision) else None
    attrs.update(
        record.mask_fields(
            (
                # learn what the decision's inputs mask, so the review's free text masks it too (not stored)
                ("", "inputs", FieldKind.LEARN, None if learned is None else to_jsonable(learned)),
                (semconv.DECISION_REVIEW_REVIEWER_ID, "review.reviewer", FieldKind.PSEUDONYM, reviewer),
                (semconv.DECISION_REVIEW_REASON, "review.reason", FieldKind.TEXT, reason),
                (semconv.DECISION_REVIEW_ORIGINAL_OUTCOME, "review.original_outcome", FieldKind.TEXT, original),
                (semconv.DECISION_REVIEW_NEW_OUTCOME, "review.new_outcome", FieldKind.TEXT, new_outcome),
                (
                    semconv.DECISION_REVIEW_DECIDED_AT,
                    "review.decided_at",
                    FieldKind.VALUE,
                    None if decided_at is None else int(decided_at),
                ),
            ),
            learn_only=("inputs",),
        )
    )
    if record.redacted:
        attrs[semconv.DECISION_REDACTED] = record.redacted
    identity = prefect_identity()
    attrs.update(identity)
    _share_masked_values(record, identity)
    links = [Link(link_ctx, {semconv.DECISION_ID: decision_id})] if link_ctx is not None else []
    now = time.time_ns()
    _record_span(runtime, semconv.REVIEW_SPAN_NAME, attrs, review_id, now, links)  # reviews are chain links too
    return review_id
