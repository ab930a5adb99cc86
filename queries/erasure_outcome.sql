-- name: erasure_outcome
-- title: What an erasure request removed and what it kept, under which obligation
-- description: For one erasure request (`otel-decisions erase SUBJECT --request REF`): each of the subject's
-- description: decisions, whether it was made unlinkable (removed, with its reviews and events; a signed tombstone
-- description: keeps only its id and hashes) or kept, and for a kept one the obligation that keeps it.
-- regulations: GDPR Art. 17(1), 17(3)(b) (legal obligation), 17(3)(e) (legal claims); GDPR Art. 5(2), 30
-- param: request String | the erasure request's reference (e.g. DSR-2026-114)
SELECT
    o.request AS request,
    o.at AS erased_at,
    o.actor AS erased_by,
    r.decision_id AS decision_id,
    if(anyIf(r.action, r.record_kind = 'decision') = 'kept', 'kept', 'made unlinkable') AS outcome,
    anyIf(r.obligation, r.action = 'kept') AS kept_under,
    countIf(r.action = 'deleted') AS records_removed
FROM lifecycle_records AS r
INNER JOIN (
    SELECT operation_id, request, at, actor FROM lifecycle_operations WHERE kind = 'erasure' AND request = {request:String}
) AS o ON o.operation_id = r.operation_id
WHERE r.record_kind != 'task_run'
GROUP BY o.request, o.at, o.actor, r.decision_id
ORDER BY erased_at, outcome, decision_id
