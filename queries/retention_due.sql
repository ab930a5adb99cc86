-- name: retention_due
-- title: Records past their retention date and not on legal hold
-- description: Decisions whose retain_until (computed when they were recorded, the longest period that applies)
-- description: is before the given day and that no active legal hold covers: what `otel-decisions retention
-- description: apply` would dispose of. Records on hold are not listed (see `otel-decisions hold list`).
-- regulations: GDPR Art. 5(1)(e) (storage limitation); FINRA Rule 4511(b); SEC Rule 17a-4; HIPAA 45 CFR 164.316(b)(2)
-- param: as_of Date = 1970-01-01 | the day to judge by (1970-01-01: today, UTC)
SELECT
    decision_id,
    timestamp,
    decision_type,
    retention_class,
    retention_until,
    retention_basis,
    dateDiff('day', retention_until, if({as_of:Date} = toDate('1970-01-01'), today(), {as_of:Date})) AS days_past
FROM decisions FINAL
WHERE retention_until IS NOT NULL
  AND retention_until < if({as_of:Date} = toDate('1970-01-01'), today(), {as_of:Date})
  AND NOT (decision_id IN (SELECT target FROM active_legal_holds WHERE scope = 'decision')
           OR subject_id IN (SELECT target FROM active_legal_holds WHERE scope = 'subject')
           OR flow_run_id IN (SELECT target FROM active_legal_holds WHERE scope = 'flow_run')
           OR decision_type IN (SELECT target FROM active_legal_holds WHERE scope = 'decision_type'))
ORDER BY retention_until, decision_id
