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
import json
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
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
    (semconv.DECISION_LEGAL_BASIS, "legal_basis", _T, "legal_basis"),
    (semconv.DECISION_DATA_SOURCES, "data_sources", _TL, "data_sources"),
    (semconv.DECISION_DATASET_VERSIONS, "dataset_versions", _TL, "dataset_versions"),
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


def note_unsampled(runtime: Any, ctx: SpanContext) -> None:
    """Say once that a decision span was not recorded (its context is not sampled)."""
    if not ctx.trace_flags.sampled:
        runtime.warn_once(
            "unsampled",
            "otel-decisions: a decision span was not recorded (no SDK tracer provider, or a sampler "
            "dropped it). Call otel_decisions.configure() at start-up so decisions are kept.",
        )


def _share_masked_values(record: PrivacyRecord, identity: dict[str, str]) -> None:
    """What this record masked is masked in its task run's and flow run's spans too (Prefect's own)."""
    if identity:
        masked = record.masked_values
        if masked:
            run_values.add(
                (identity.get(semconv.PREFECT_TASK_RUN_ID), identity.get(semconv.PREFECT_FLOW_RUN_ID)), masked
            )


def _retention(runtime: Any, decision: Decision, now_ns: int) -> dict[str, Any]:
    """``retain_until`` and its basis from the retention policy in force (computed once, at decision time)."""
    term = runtime.retention.term(
        datetime.fromtimestamp(now_ns / 1e9, UTC), decision.retention_class, decision.regulations
    )
    attrs: dict[str, Any] = {
        semconv.DECISION_RETENTION_BASIS: term.basis,
        semconv.DECISION_RETENTION_POLICY: runtime.retention.policy_id,
    }
    if term.obligation_until is not None:
        attrs[semconv.DECISION_RETENTION_OBLIGATION_UNTIL] = term.obligation_until.isoformat()
    if term.retain_until is not None:
        attrs[semconv.DECISION_RETENTION_UNTIL] = term.retain_until.isoformat()
    else:
        runtime.warn_once(
            f"retention:{decision.retention_class}",
            f"otel-decisions: retention class {decision.retention_class!r} is not in the retention policy, so its "
            "decisions are kept until it is (no retain_until). Add it to OTEL_DECISIONS_RETENTION_POLICY, e.g. "
            f'{{"{decision.retention_class}": {{"period": "6y", "basis": "..."}}}}',
        )
    return attrs


def decision_attributes(
    runtime: Any, decision: Decision, source: semconv.DecisionSource, raw_inputs_given: bool, now: int
) -> tuple[dict[str, Any], PrivacyRecord]:
    """A validated decision's attributes as recorded (every value through the masking path), before the
    Prefect identity and the integrity chain; and the privacy record that masked them."""
    settings = runtime.settings
    policy = runtime.privacy
    record: PrivacyRecord = policy.new_record()
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
    attrs.update(_retention(runtime, decision, now))
    return attrs, record


def emit(decision: Decision, source: semconv.DecisionSource, raw_inputs_given: bool) -> Decision:
    runtime = _runtime.get_runtime()
    now = time.time_ns()
    attrs, record = decision_attributes(runtime, decision, source, raw_inputs_given, now)
    identity = prefect_identity()
    attrs.update(identity)
    _share_masked_values(record, identity)
    ctx = _record_span(runtime, semconv.DECISION_SPAN_PREFIX + attrs[semconv.DECISION_TYPE], attrs, decision.id, now)
    note_unsampled(runtime, ctx)
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
        attrs,
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


def _about(decision: Decision | str) -> tuple[str, Any, Decision | None]:
    """The id, span context (if known) and object of the decision a review or event is about."""
    if isinstance(decision, Decision):
        return decision.id, decision.span_context, decision
    decision_id = str(decision)
    try:
        uuid.UUID(decision_id)
    except ValueError:
        raise DecisionValidationError(
            "decision", f"{decision_id!r} is not a decision id (UUID); pass the Decision returned by record_decision"
        ) from None
    return decision_id, None, None


def record_review(
    decision: Decision | str,
    /,
    *,
    reviewer: str,
    action: str | semconv.ReviewAction,
    reason: str | None = None,
    new_outcome: str | None = None,
    original_outcome: str | None = None,
    review_id: str | None = None,
    reviewed_at: datetime | None = None,
) -> str:
    """Record a human review or override of *decision* (a :class:`Decision` or its id).

    Makes a ``decision.review`` span carrying ``decision.id`` and a link to the decision's span
    (when known: the decision object carries it, or it was recorded in this process). Works from
    a later flow run. Returns the review id.

    *review_id* (a UUID): the same review recorded again keeps one row (a resumed flow run reading
    the same answer). *reviewed_at*: when the reviewer decided, if earlier than now (a form submitted
    before the flow run resumed).
    """
    recorded = review_record(
        decision,
        reviewer=reviewer,
        action=action,
        reason=reason,
        new_outcome=new_outcome,
        original_outcome=original_outcome,
        review_id=review_id,
        reviewed_at=reviewed_at,
    )
    return str(recorded[semconv.DECISION_REVIEW_ID])


def review_record(
    decision: Decision | str,
    /,
    *,
    reviewer: str,
    action: str | semconv.ReviewAction,
    reason: str | None = None,
    new_outcome: str | None = None,
    original_outcome: str | None = None,
    review_id: str | None = None,
    reviewed_at: datetime | None = None,
    link: SpanContext | None = None,
) -> dict[str, Any]:
    """:func:`record_review`, returning the review's attributes as stored (pseudonymised, scrubbed).

    *link*: the decision's span context when neither the decision object nor this process knows it
    (a resumed flow run: the span ids kept with the review form)."""
    decision_id, link_ctx, given = _about(decision)
    link_ctx = link_ctx or link
    if review_id is not None and not (isinstance(review_id, str) and _is_uuid(review_id)):
        raise DecisionValidationError("review_id", f"{review_id!r} is not a UUID; leave it out for a new one")
    reviewed_ns = time.time_ns()
    if reviewed_at is not None:
        if not isinstance(reviewed_at, datetime):
            raise DecisionValidationError("reviewed_at", f"expected a datetime, got {reviewed_at!r}")
        moment = reviewed_at if reviewed_at.tzinfo else reviewed_at.replace(tzinfo=UTC)
        reviewed_ns = min(int(moment.timestamp() * 1e9), reviewed_ns)
    decided_at = given.timestamp_ns if given is not None else None
    original = original_outcome
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
    review_id = review_id or str(uuid.uuid4())
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
    _record_about(runtime, record, semconv.REVIEW_SPAN_NAME, attrs, review_id, reviewed_ns, link_ctx)
    registry.add_review(
        decision_id,
        action_value,
        attrs.get(semconv.DECISION_REVIEW_NEW_OUTCOME),
        attrs.get(semconv.PREFECT_FLOW_RUN_ID),
    )
    return attrs


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _record_about(
    runtime: Any, record: PrivacyRecord, name: str, attrs: dict[str, Any], record_id: str, now: int, link_ctx: Any
) -> None:
    """Record a review or event about a decision: redactions, Prefect identity, a link to the decision's span.

    Reviews and events are chain links too."""
    if record.redacted:
        attrs[semconv.DECISION_REDACTED] = record.redacted
    identity = prefect_identity()
    attrs.update(identity)
    _share_masked_values(record, identity)
    decision_id = attrs[semconv.DECISION_ID]
    links = [Link(link_ctx, {semconv.DECISION_ID: decision_id})] if link_ctx is not None else []
    _record_span(runtime, name, attrs, record_id, now, links)


_CORRECTABLE = _DECISION_FIELDS - {"inputs", "output"}


def _masked_value(record: PrivacyRecord, path: str, field: str, value: Any) -> str | None:
    """*value* of *field* through the masking path, as text (JSON unless it is text)."""
    if value is None:
        return None
    leaf = field.split(".", 1)[1] if field.startswith("inputs.") else field
    masked = record.json_field({leaf: to_jsonable(value)}, path, jsonable=True)
    try:
        inner = json.loads(masked)[leaf]
    except (ValueError, KeyError, TypeError):
        return masked  # truncated or masked whole: keep the masked text as it is
    if type(inner) is str:
        return inner
    return json.dumps(inner, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


def _record_event(
    decision: Decision | str,
    event_type: semconv.EventType,
    *,
    actor: str,
    actor_field: str,
    reason: str | None,
    reference: str | None,
    effective_at: Any,
    values: tuple[str | None, Any, Any] = (None, None, None),
    channel: str | None = None,
) -> str:
    decision_id, link_ctx, given = _about(decision)
    if not actor or not str(actor).strip():
        raise DecisionValidationError(actor_field, "is required; pass the user id of who did it (it is pseudonymised)")
    effective_ns: int | None = None
    if effective_at is not None:
        if isinstance(effective_at, datetime):
            moment = effective_at if effective_at.tzinfo else effective_at.replace(tzinfo=UTC)
            effective_ns = int(moment.timestamp() * 1e9)
        elif isinstance(effective_at, int) and not isinstance(effective_at, bool):
            effective_ns = effective_at
        else:
            raise DecisionValidationError(
                "sent_at" if event_type is semconv.EventType.NOTICE else "effective_at",
                f"expected a datetime (or ns since epoch), got {effective_at!r}",
            )
    known = registry.lookup(decision_id)
    if known is not None:
        link_ctx = link_ctx or known[0]
    runtime = _runtime.get_runtime()
    policy = runtime.privacy
    record = policy.new_record()
    event_id = str(uuid.uuid4())
    now = time.time_ns()
    field, original, new = values
    attrs: dict[str, Any] = {
        semconv.DECISION_ID: decision_id,
        semconv.DECISION_EVENT_ID: event_id,
        semconv.DECISION_EVENT_TYPE: event_type.value,
        semconv.DECISION_PSEUDONYM_KEY_ID: policy.key_id,
        semconv.DECISION_EVENT_EFFECTIVE_AT: effective_ns if effective_ns is not None else now,
    }
    learned = given.inputs if given is not None else None
    attrs.update(
        record.mask_fields(
            (
                ("", "inputs", FieldKind.LEARN, None if learned is None else to_jsonable(learned)),
                (semconv.DECISION_EVENT_ACTOR_ID, "event.actor", FieldKind.PSEUDONYM, actor),
                (semconv.DECISION_EVENT_FIELD, "event.field", FieldKind.TEXT, field),
                (semconv.DECISION_EVENT_CHANNEL, "event.channel", FieldKind.TEXT, channel),
                (semconv.DECISION_EVENT_REFERENCE, "event.reference", FieldKind.TEXT, reference),
                (semconv.DECISION_EVENT_REASON, "event.reason", FieldKind.TEXT, reason),
            ),
            learn_only=("inputs",),
        )
    )
    if field is not None:
        for key, path, value in (
            (semconv.DECISION_EVENT_ORIGINAL_VALUE, "event.original_value", original),
            (semconv.DECISION_EVENT_NEW_VALUE, "event.new_value", new),
        ):
            if field == "subject_id":  # an identifier: its pseudonym, as on the decision
                attrs.update(record.mask_fields(((key, path, FieldKind.PSEUDONYM, value),)))
                continue
            text = _masked_value(record, path, field, value)
            if text is not None:
                attrs[key] = text
    _record_about(runtime, record, semconv.EVENT_SPAN_NAME, attrs, event_id, now, link_ctx)
    return event_id


_MISSING = object()


def record_correction(
    decision: Decision | str,
    /,
    *,
    field: str,
    value: Any,
    corrected_by: str,
    reason: str,
    original: Any = _MISSING,
    reference: str | None = None,
) -> str:
    """Record that *field* of *decision* was wrong and *value* is right: a new record linked to it, never an UPDATE.

    *field*: a decision field (``outcome``, ``reasons``, ``model_version``, ...) or ``inputs.<key>`` for one input.
    The decision as it stood at any time, with every correction, is ``query run decision_as_of``. Values go
    through the privacy pipeline like the decision's own (a masked input key stays masked). Returns the event id.
    """
    if not isinstance(field, str) or not field.strip():
        raise DecisionValidationError("field", "name the corrected field: a decision field or 'inputs.<key>'")
    if not (field.startswith("inputs.") and len(field) > len("inputs.")) and field not in _CORRECTABLE:
        raise DecisionValidationError(
            "field", f"{field!r} is not a decision field; use one of {sorted(_CORRECTABLE)} or 'inputs.<key>'"
        )
    if not reason or not str(reason).strip():
        raise DecisionValidationError("reason", "is required; say why the recorded value was wrong")
    if original is _MISSING:
        original = None
        if isinstance(decision, Decision):
            if field.startswith("inputs."):
                inputs = decision.inputs if isinstance(decision.inputs, dict) else {}
                original = inputs.get(field.split(".", 1)[1])
            else:
                original = getattr(decision, field)
    return _record_event(
        decision,
        semconv.EventType.CORRECTION,
        actor=corrected_by,
        actor_field="corrected_by",
        reason=reason,
        reference=reference,
        effective_at=None,
        values=(field, original, value),
    )


def record_notice(
    decision: Decision | str,
    /,
    *,
    channel: str,
    sent_by: str,
    sent_at: datetime | None = None,
    reference: str | None = None,
    reason: str | None = None,
) -> str:
    """Record that an adverse-action notice (Reg B 1002.9) or an Art. 22 notice about *decision* went out.

    *channel*: ``mail``, ``email``, ``portal``, ...; *sent_at*: when it went out (default now); *reference*:
    the letter's id. ``query run adverse_action_notices`` checks each denial's notice against 30 days.
    """
    if not isinstance(channel, str) or not channel.strip():
        raise DecisionValidationError("channel", "is required; say how the notice went out, e.g. 'mail' or 'email'")
    return _record_event(
        decision,
        semconv.EventType.NOTICE,
        actor=sent_by,
        actor_field="sent_by",
        reason=reason,
        reference=reference,
        effective_at=sent_at,
        channel=channel,
    )


def record_review_request(
    decision: Decision | str,
    /,
    *,
    requested_by: str,
    due_at: datetime | None,
    reference: str,
    channel: str = "prefect-ui",
    reason: str | None = None,
) -> str:
    """Record that a human review of *decision* was asked for (by :func:`otel_decisions.request_review`):
    *due_at* the deadline (None: none), *reference* the form's key in the flow run. With the review (or its
    expiry) it answers how long reviewers took and which requests went unanswered. Returns the event id."""
    return _record_event(
        decision,
        semconv.EventType.REVIEW_REQUESTED,
        actor=requested_by,
        actor_field="requested_by",
        reason=reason,
        reference=reference,
        effective_at=due_at,
        channel=channel,
    )


def record_review_expiry(
    decision: Decision | str,
    /,
    *,
    requested_by: str,
    due_at: datetime,
    reference: str,
    channel: str = "prefect-ui",
) -> str:
    """Record that the review asked for under *reference* was not given by *due_at*: no review is not an
    approval, and this record says so. Returns the event id."""
    return _record_event(
        decision,
        semconv.EventType.REVIEW_EXPIRED,
        actor=requested_by,
        actor_field="requested_by",
        reason="no review was submitted before the deadline",
        reference=reference,
        effective_at=due_at,
        channel=channel,
    )


def decision_card(decision: Decision | str) -> dict[str, Any] | None:
    """The decision's attributes as stored (masked values stay masked), for a review form: this process's
    recent record of it, completed from the :class:`Decision` through the masking path (nothing is
    recorded); None for an id this process has not recorded."""
    decision_id = decision.id if isinstance(decision, Decision) else str(decision)
    known = registry.lookup(decision_id)
    kept = dict(known[3]) if known is not None else {}
    if not isinstance(decision, Decision):
        return kept or None
    if kept and semconv.DECISION_INPUTS in kept:
        return kept
    runtime = _runtime.get_runtime()
    record = runtime.privacy.new_record()
    kind = FieldKind.JSONABLE if runtime.settings.capture_inputs else FieldKind.LEARN
    fields: list[tuple[str, str, FieldKind, Any]] = [
        (semconv.DECISION_INPUTS, "inputs", kind, to_jsonable(decision.inputs if decision.inputs is not None else {}))
    ]
    fields += [(key, path, k, getattr(decision, name)) for key, path, k, name in _DECISION_SPEC]
    masked: dict[str, Any] = {
        semconv.DECISION_ID: decision.id,
        semconv.DECISION_AUTOMATION: decision.automation,
        semconv.DECISION_REVIEW_REQUIRED: decision.review_required,
    }
    masked.update(record.mask_fields(fields))
    return {**masked, **kept} if kept else masked
