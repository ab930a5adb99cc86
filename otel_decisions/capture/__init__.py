"""Decision capture: the :class:`Decision` model and its validation, shape detection for zero-code
capture, and recording (decisions, reviews, checkpoints) through the one masking path.

Example::

    from otel_decisions.capture import record_decision, record_review

    d = record_decision(type="credit.approval", outcome="deny", confidence=0.91,
                        inputs={"income": 41000}, subject_id="applicant-17")
    record_review(d, reviewer="analyst-4", action="approve")
"""

from otel_decisions.capture._batch import (
    BatchDecisions,
    batch_rows,
    capture_batch,
    note_auto_captured,
    record_decisions,
)
from otel_decisions.capture._decorator import decision
from otel_decisions.capture._model import Decision, new_id
from otel_decisions.capture._record import (
    chain,
    decision_card,
    emit,
    record_checkpoint,
    record_correction,
    record_decision,
    record_notice,
    record_review,
    record_review_expiry,
    record_review_request,
    review_record,
)
from otel_decisions.capture._registry import MAX_LEDGER_ROWS, FlowLedger, prefect_identity, registry
from otel_decisions.capture._shape import as_mapping, decision_from_value

__all__ = [
    "MAX_LEDGER_ROWS",
    "BatchDecisions",
    "Decision",
    "FlowLedger",
    "as_mapping",
    "batch_rows",
    "capture_batch",
    "chain",
    "decision",
    "decision_card",
    "decision_from_value",
    "emit",
    "new_id",
    "note_auto_captured",
    "prefect_identity",
    "record_checkpoint",
    "record_correction",
    "record_decision",
    "record_decisions",
    "record_notice",
    "record_review",
    "record_review_expiry",
    "record_review_request",
    "review_record",
    "registry",
]
