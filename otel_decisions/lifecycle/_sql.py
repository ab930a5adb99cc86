"""SQL shared by the life-cycle operations (and mirrored by the catalogue queries that ask the same question)."""

from __future__ import annotations

from otel_decisions import semconv

HELD_SQL = (
    "(decision_id IN (SELECT target FROM active_legal_holds WHERE scope = 'decision')"
    " OR subject_id IN (SELECT target FROM active_legal_holds WHERE scope = 'subject')"
    " OR flow_run_id IN (SELECT target FROM active_legal_holds WHERE scope = 'flow_run')"
    " OR decision_type IN (SELECT target FROM active_legal_holds WHERE scope = 'decision_type'))"
)
"""True for a ``decisions`` row under an active legal hold (by decision, subject, flow run or type)."""

PHI_SQL = (
    "(arrayExists(r -> startsWith(upper(r), 'HIPAA'), regulations) OR startsWith(lower(retention_class), 'hipaa'))"
)
"""True for a ``decisions`` row flagged as protected health information (a HIPAA regulation or retention class)."""

RECORD_KINDS = (semconv.RecordKind.DECISION, semconv.RecordKind.REVIEW, semconv.RecordKind.EVENT)

_A = "SpanAttributes"
LINK_SELECT = f"""
SELECT DISTINCT
    multiIf(SpanName = '{semconv.REVIEW_SPAN_NAME}', 'review', SpanName = '{semconv.EVENT_SPAN_NAME}', 'event', 'decision')
        AS record_kind,
    multiIf(record_kind = 'review', {_A}['{semconv.DECISION_REVIEW_ID}'],
            record_kind = 'event', {_A}['{semconv.DECISION_EVENT_ID}'], {_A}['{semconv.DECISION_ID}']) AS record_id,
    {_A}['{semconv.DECISION_ID}'] AS decision_id,
    {_A}['{semconv.DECISION_INTEGRITY_CHAIN}'] AS chain,
    toInt64OrZero({_A}['{semconv.DECISION_INTEGRITY_SEQ}']) AS seq,
    {_A}['{semconv.DECISION_INTEGRITY_HASH}'] AS hash,
    {_A}['{semconv.DECISION_INTEGRITY_PREV_HASH}'] AS prev_hash
FROM otel_traces
WHERE {semconv.record_sql(*RECORD_KINDS)}
"""
"""Every chain link (decision, review, event span) with its position, one row per link (re-deliveries collapse)."""
