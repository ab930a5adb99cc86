"""Every attribute key and closed value set otel-decisions writes.

No other module spells an attribute key as a literal: import it from here.
Official OpenTelemetry keys are reused where the meaning is the same
(``gen_ai.*``, ``error.type``, ``service.*``); the rest live under ``decision.*``.

Example::

    from otel_decisions import semconv
    span.set_attribute(semconv.DECISION_OUTCOME, "approve")
"""

from __future__ import annotations

from enum import Enum
from typing import Final

# --- span names -------------------------------------------------------------
DECISION_SPAN_PREFIX: Final = "decision "
"""A decision span is named ``decision {decision.type}``."""
REVIEW_SPAN_NAME: Final = "decision.review"
CHECKPOINT_SPAN_NAME: Final = "decision.integrity.checkpoint"
"""A signed checkpoint of a hash chain's head (chain, seq, hash), recorded at flow ends and flushes."""
EVENT_SPAN_NAME: Final = "decision.event"
"""A later fact about a decision that is not a review: a correction, an adverse-action notice sent."""


class RecordKind(str, Enum):
    """The kinds of span that are decision records (kept durably, always sampled, never TTL'd)."""

    DECISION = "decision"
    REVIEW = "review"
    CHECKPOINT = "checkpoint"
    EVENT = "event"


def record_kind(span_name: str) -> RecordKind | None:
    """Which decision record a span of this name is, or ``None`` for any other span.

    The one answer to "is this a decision record?": the sampler, the privacy filter, the durable
    processor, the store's views and ``verify`` all ask it here (SQL forms: :func:`record_sql`).
    """
    if span_name.startswith(DECISION_SPAN_PREFIX):
        return RecordKind.DECISION
    if span_name == REVIEW_SPAN_NAME:
        return RecordKind.REVIEW
    if span_name == CHECKPOINT_SPAN_NAME:
        return RecordKind.CHECKPOINT
    if span_name == EVENT_SPAN_NAME:
        return RecordKind.EVENT
    return None


def is_decision_record(span_name: str) -> bool:
    """A decision, review, event or checkpoint span."""
    return record_kind(span_name) is not None


def _sql_text(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def record_sql(*kinds: RecordKind, column: str = "SpanName") -> str:
    """The SQL form of :func:`record_kind` on a span-name column: true for the given kinds (default all)."""
    chosen = kinds or tuple(RecordKind)
    parts = []
    if RecordKind.DECISION in chosen:
        parts.append(f"startsWith({column}, {_sql_text(DECISION_SPAN_PREFIX)})")
    names = [
        name
        for kind, name in (
            (RecordKind.REVIEW, REVIEW_SPAN_NAME),
            (RecordKind.CHECKPOINT, CHECKPOINT_SPAN_NAME),
            (RecordKind.EVENT, EVENT_SPAN_NAME),
        )
        if kind in chosen
    ]
    if len(names) == 1:
        parts.append(f"{column} = {_sql_text(names[0])}")
    elif names:
        parts.append(f"{column} IN ({', '.join(_sql_text(n) for n in names)})")
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


# --- decision attributes ----------------------------------------------------
DECISION_ID: Final = "decision.id"
DECISION_TYPE: Final = "decision.type"
DECISION_OUTCOME: Final = "decision.outcome"
DECISION_OPTIONS: Final = "decision.options"
DECISION_CONFIDENCE: Final = "decision.confidence"
DECISION_SCORE: Final = "decision.score"
DECISION_THRESHOLD: Final = "decision.threshold"
DECISION_RATIONALE: Final = "decision.rationale"
DECISION_REASONS: Final = "decision.reasons"
DECISION_INPUTS: Final = "decision.inputs"
DECISION_INPUTS_DIGEST: Final = "decision.inputs.digest"
DECISION_OUTPUT: Final = "decision.output"
DECISION_SUBJECT_ID: Final = "decision.subject.id"
DECISION_MODEL_NAME: Final = "decision.model.name"
DECISION_MODEL_VERSION: Final = "decision.model.version"
DECISION_MODEL_PROVIDER: Final = "decision.model.provider"
DECISION_POLICY_VERSION: Final = "decision.policy.version"
DECISION_AUTOMATION: Final = "decision.automation"
DECISION_REVIEW_REQUIRED: Final = "decision.review.required"
DECISION_REGULATIONS: Final = "decision.regulations"
DECISION_RETENTION_CLASS: Final = "decision.retention.class"
DECISION_REDACTED: Final = "decision.redacted"
DECISION_INTEGRITY_SEQ: Final = "decision.integrity.seq"
DECISION_INTEGRITY_HASH: Final = "decision.integrity.hash"
DECISION_INTEGRITY_PREV_HASH: Final = "decision.integrity.prev_hash"
DECISION_INTEGRITY_CHAIN: Final = "decision.integrity.chain"
"""Id of the hash chain (one per recording process) the record belongs to."""
DECISION_INTEGRITY_SIGNATURE: Final = "decision.integrity.signature"
"""On a checkpoint span: HMAC-SHA256 (the pseudonym key) over ``chain|seq|hash``."""
DECISION_SOURCE: Final = "decision.source"
"""How the decision was captured (see :class:`DecisionSource`)."""
DECISION_PSEUDONYM_KEY_ID: Final = "decision.pseudonym.key_id"
"""Identifier of the HMAC key that produced the pseudonyms and the inputs digest."""
DECISION_SEGMENT: Final = "decision.segment"
"""Optional cohort label (e.g. an age band) used by fairness queries; never a raw identifier."""
DECISION_RETENTION_UNTIL: Final = "decision.retention.until"
"""Date (``YYYY-MM-DD``, UTC) until which the record must be kept: the longest period that applies."""
DECISION_RETENTION_BASIS: Final = "decision.retention.basis"
"""The longest legal obligation that applies (e.g. FINRA Rule 4511(b)), or the internal policy if none does."""
DECISION_RETENTION_OBLIGATION_UNTIL: Final = "decision.retention.obligation_until"
"""Date until which the law requires keeping the record (the longest legal obligation; an erasure request
keeps it until then); absent when no legal obligation applies."""
DECISION_RETENTION_POLICY: Final = "decision.retention.policy"
"""Id of the retention policy (its rules' digest) that computed ``retain_until``."""
DECISION_LEGAL_BASIS: Final = "decision.legal_basis"
"""GDPR Art. 22(2) basis of a solely automated decision with significant effects (see :class:`LegalBasis`)."""
DECISION_DATA_SOURCES: Final = "decision.data_sources"
"""The data sources the decision used (e.g. ``credit-bureau``, ``application-form``)."""
DECISION_DATASET_VERSIONS: Final = "decision.dataset_versions"
"""Versions of the datasets or reference data used (e.g. ``bureau-extract@2026-11-30``)."""

# --- review attributes (span ``decision.review``) ---------------------------
DECISION_REVIEW_ID: Final = "decision.review.id"
DECISION_REVIEW_REVIEWER_ID: Final = "decision.review.reviewer.id"
DECISION_REVIEW_ACTION: Final = "decision.review.action"
DECISION_REVIEW_REASON: Final = "decision.review.reason"
DECISION_REVIEW_ORIGINAL_OUTCOME: Final = "decision.review.original_outcome"
DECISION_REVIEW_NEW_OUTCOME: Final = "decision.review.new_outcome"
DECISION_REVIEW_DECIDED_AT: Final = "decision.review.decision_time_unix_nano"
"""When the reviewed decision was made (ns since epoch) if known: lets queries time a review."""

# --- event attributes (span ``decision.event``) -----------------------------
DECISION_EVENT_ID: Final = "decision.event.id"
DECISION_EVENT_TYPE: Final = "decision.event.type"
"""``correction`` or ``notice`` (see :class:`EventType`)."""
DECISION_EVENT_ACTOR_ID: Final = "decision.event.actor.id"
"""HMAC pseudonym of who made the correction or sent the notice."""
DECISION_EVENT_REASON: Final = "decision.event.reason"
DECISION_EVENT_FIELD: Final = "decision.event.field"
"""The corrected field: a decision field (``outcome``, ``reasons``, ...) or ``inputs.<key>``."""
DECISION_EVENT_ORIGINAL_VALUE: Final = "decision.event.original_value"
DECISION_EVENT_NEW_VALUE: Final = "decision.event.new_value"
DECISION_EVENT_CHANNEL: Final = "decision.event.channel"
"""How a notice went out: ``mail``, ``email``, ``portal``, ..."""
DECISION_EVENT_REFERENCE: Final = "decision.event.reference"
"""A reference outside this record: the notice letter's id, the ticket of a correction."""
DECISION_EVENT_EFFECTIVE_AT: Final = "decision.event.effective_at_unix_nano"
"""When the fact took effect (a notice's sending time), ns since epoch; defaults to the recording time."""

# --- flow summary (on the flow-run span) ------------------------------------
DECISION_FLOW_CAPTURED: Final = "decision.flow.captured"
"""Number of decisions recorded in a flow run, set on the flow-run span when it ends."""

# --- official OpenTelemetry keys reused -------------------------------------
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
ERROR_TYPE: Final = "error.type"
SERVICE_NAME: Final = "service.name"
SERVICE_VERSION: Final = "service.version"
DEPLOYMENT_ENVIRONMENT: Final = "deployment.environment.name"

# --- Prefect identity, copied so one table answers --------------------------
PREFECT_FLOW_RUN_ID: Final = "prefect.flow_run.id"
PREFECT_TASK_RUN_ID: Final = "prefect.task_run.id"
PREFECT_FLOW_NAME: Final = "prefect.flow.name"
PREFECT_TASK_NAME: Final = "prefect.task.name"
# Keys Prefect's own run telemetry writes; our fallback spans use the same ones.
PREFECT_RUN_NAME: Final = "prefect.run.name"
PREFECT_RUN_TYPE: Final = "prefect.run.type"
PREFECT_RUN_ID: Final = "prefect.run.id"
PREFECT_TAGS: Final = "prefect.tags"

INSTRUMENTATION_SCOPE: Final = "otel_decisions"


class Automation(str, Enum):
    """How much a human is involved in the decision (EU AI Act Art. 14)."""

    AUTOMATED = "automated"
    HUMAN_IN_LOOP = "human_in_loop"
    ADVISORY = "advisory"


class ReviewAction(str, Enum):
    """What a human reviewer did with a decision."""

    APPROVE = "approve"
    OVERRIDE = "override"
    ESCALATE = "escalate"
    REJECT = "reject"
    COMMENT = "comment"


class LegalBasis(str, Enum):
    """GDPR Art. 22(2): why a solely automated decision with significant effects is allowed."""

    CONTRACT = "contract"
    """Art. 22(2)(a): necessary for entering into or performing a contract with the subject."""
    LAW = "law"
    """Art. 22(2)(b): authorised by Union or Member State law."""
    CONSENT = "consent"
    """Art. 22(2)(c): the subject's explicit consent."""


class EventType(str, Enum):
    """What a ``decision.event`` records."""

    CORRECTION = "correction"
    """A field of the decision was wrong (an input, the outcome): the new value, never an UPDATE."""
    NOTICE = "notice"
    """An adverse-action (or Art. 22) notice went out to the subject."""
    REVIEW_REQUESTED = "review_requested"
    """A human review was asked for (a review form in the Prefect UI); effective_at is its deadline."""
    REVIEW_EXPIRED = "review_expired"
    """No review came by the deadline: the decision stands unreviewed, never silently approved."""


class DecisionSource(str, Enum):
    """How a decision span came to be."""

    AUTO = "auto"
    """A task returned a decision-shaped value (zero-code capture)."""
    EXPLICIT = "explicit"
    """``record_decision()`` was called."""
    DECORATOR = "decorator"
    """A function decorated with ``@decision`` returned."""


REDACTION_SENTINEL: Final = "[REDACTED]"
"""Replaces a masked value: "hidden" is distinguishable from "missing"."""
TRUNCATION_MARKER: Final = "…[truncated {dropped} chars]"
UNSERIALISABLE_PREFIX: Final = "<unserialisable "

# Attribute table for the README (key -> type, description). Kept here so a test can
# check README, semconv and storage against one source.
DECISION_ATTRIBUTES: Final[dict[str, tuple[str, str]]] = {
    DECISION_ID: ("string", "UUID; the deduplication key everywhere"),
    DECISION_TYPE: ("string", "kind of decision, e.g. `credit.approval`, `clinical.triage`"),
    DECISION_OUTCOME: ("string", "what was decided, e.g. approve / deny / refer"),
    DECISION_OPTIONS: ("string[]", "alternatives considered"),
    DECISION_CONFIDENCE: ("double", "in [0,1]; NaN or out of range is rejected"),
    DECISION_SCORE: ("double", "raw model score"),
    DECISION_THRESHOLD: ("double", "cut-off in force when deciding"),
    DECISION_RATIONALE: ("string", "free-text explanation, scrubbed by the privacy pipeline"),
    DECISION_REASONS: ("string[]", "principal reasons, ranked (Reg B 1002.9)"),
    DECISION_INPUTS: ("string", "JSON of the inputs after the privacy pipeline (off with `capture_inputs=False`)"),
    DECISION_INPUTS_DIGEST: ("string", "HMAC-SHA256 of the canonical JSON of the raw inputs; always set"),
    DECISION_OUTPUT: ("string", "JSON of the output after the privacy pipeline"),
    DECISION_SUBJECT_ID: ("string", "HMAC pseudonym of the data subject, never the raw identifier"),
    DECISION_MODEL_NAME: ("string", "model registry name"),
    DECISION_MODEL_VERSION: ("string", "model registry version"),
    DECISION_MODEL_PROVIDER: ("string", "model provider"),
    DECISION_POLICY_VERSION: ("string", "rules / threshold version"),
    DECISION_AUTOMATION: ("string", "automated / human_in_loop / advisory"),
    DECISION_REVIEW_REQUIRED: ("bool", "a human must review this decision"),
    DECISION_REGULATIONS: ("string[]", "regulations the record serves, e.g. FINRA-4511, GDPR-22"),
    DECISION_RETENTION_CLASS: ("string", "retention class; legal holds override"),
    DECISION_REDACTED: ("string[]", "fields the privacy pipeline removed or masked"),
    DECISION_INTEGRITY_SEQ: ("int", "position in the per-process hash chain"),
    DECISION_INTEGRITY_HASH: ("string", "SHA-256 over this record and the previous hash"),
    DECISION_INTEGRITY_PREV_HASH: ("string", "hash of the previous record in the chain (empty at a chain's start)"),
    DECISION_INTEGRITY_CHAIN: ("string", "id of the hash chain (one per recording process)"),
    DECISION_SOURCE: ("string", "auto / explicit / decorator"),
    DECISION_PSEUDONYM_KEY_ID: ("string", "id of the HMAC key used for pseudonyms and digest"),
    DECISION_SEGMENT: ("string", "optional cohort label for fairness queries"),
    DECISION_RETENTION_UNTIL: ("date", "keep until this day (UTC): the longest retention period that applies"),
    DECISION_RETENTION_BASIS: (
        "string",
        "the legal obligation behind `retention.obligation_until` (e.g. FINRA Rule 4511(b)), else the internal policy",
    ),
    DECISION_RETENTION_OBLIGATION_UNTIL: ("date", "the law requires keeping it until this day (erasure keeps it)"),
    DECISION_RETENTION_POLICY: ("string", "id of the retention policy that computed `retention.until`"),
    DECISION_LEGAL_BASIS: ("string", "GDPR 22(2) basis of a solely automated decision: contract / law / consent"),
    DECISION_DATA_SOURCES: ("string[]", "data sources used"),
    DECISION_DATASET_VERSIONS: ("string[]", "dataset or reference-data versions used"),
    GEN_AI_REQUEST_MODEL: ("string", "official OTel key, mirrors `decision.model.name`"),
    GEN_AI_PROVIDER_NAME: ("string", "official OTel key, mirrors `decision.model.provider`"),
    PREFECT_FLOW_RUN_ID: ("string", "Prefect flow run id"),
    PREFECT_TASK_RUN_ID: ("string", "Prefect task run id"),
    PREFECT_FLOW_NAME: ("string", "Prefect flow name"),
    PREFECT_TASK_NAME: ("string", "Prefect task name"),
}

REVIEW_ATTRIBUTES: Final[dict[str, tuple[str, str]]] = {
    DECISION_ID: ("string", "the reviewed decision (plus a span link to it)"),
    DECISION_REVIEW_ID: ("string", "UUID of the review; its deduplication key"),
    DECISION_REVIEW_REVIEWER_ID: ("string", "HMAC pseudonym of the reviewer"),
    DECISION_REVIEW_ACTION: ("string", "approve / override / escalate / reject / comment"),
    DECISION_REVIEW_REASON: ("string", "reviewer's reason, scrubbed"),
    DECISION_REVIEW_ORIGINAL_OUTCOME: ("string", "outcome before the review"),
    DECISION_REVIEW_NEW_OUTCOME: ("string", "outcome after the review (override)"),
    DECISION_REVIEW_DECIDED_AT: ("int", "when the reviewed decision was made, ns since epoch"),
    DECISION_PSEUDONYM_KEY_ID: ("string", "id of the HMAC key used for the reviewer pseudonym"),
}

EVENT_ATTRIBUTES: Final[dict[str, tuple[str, str]]] = {
    DECISION_ID: ("string", "the decision the event is about (plus a span link to it)"),
    DECISION_EVENT_ID: ("string", "UUID of the event; its deduplication key"),
    DECISION_EVENT_TYPE: ("string", "correction / notice / review_requested / review_expired"),
    DECISION_EVENT_ACTOR_ID: ("string", "HMAC pseudonym of who corrected, sent or asked for it"),
    DECISION_EVENT_REASON: ("string", "why, scrubbed"),
    DECISION_EVENT_FIELD: ("string", "corrected field: a decision field or `inputs.<key>`"),
    DECISION_EVENT_ORIGINAL_VALUE: ("string", "the field's value before (JSON unless text), masked"),
    DECISION_EVENT_NEW_VALUE: ("string", "the field's value after (JSON unless text), masked"),
    DECISION_EVENT_CHANNEL: (
        "string",
        "how a notice went out (mail / email / portal / ...) or a review was asked for (prefect-ui)",
    ),
    DECISION_EVENT_REFERENCE: ("string", "notice letter id, ticket, case reference, review form key"),
    DECISION_EVENT_EFFECTIVE_AT: (
        "int",
        "when it took effect (a notice's sending time; a review request's deadline), ns since epoch",
    ),
    DECISION_PSEUDONYM_KEY_ID: ("string", "id of the HMAC key used for the actor pseudonym"),
}
