-- name: decision_as_of
-- title: A decision as it stood at a given time, with every later change, who made it and when
-- description: The decision's recorded values (outcome, reasons, confidence, model version, inputs), then every
-- description: review, correction, notice and legal hold on it in time order, each with its actor (pseudonymised)
-- description: and whether it was in effect at the given time. value_as_of is each field's value at that time: a
-- description: correction or override is a new record linked to the original, never an UPDATE.
-- regulations: SEC Rule 17a-4(f)(2)(i)(A) (audit trail that re-creates the original record); FINRA Rule 4511; EU AI Act Art. 12
-- param: decision_id String | the decision
-- param: at DateTime64(3) = 2100-01-01 00:00:00 | the time to re-create it at (UTC; default: now)
SELECT
    changed_at,
    change,
    actor_id,
    field,
    original_value,
    new_value,
    reason,
    reference,
    changed_at <= {at:DateTime64(3)} AS in_effect,
    -- a field no change had touched yet at that time (an input corrected later) had its first change's original value
    multiIf(
        field = '', '',
        countIf(changed_at <= {at:DateTime64(3)}) OVER (PARTITION BY field) > 0,
        argMaxIf(new_value, changed_at, changed_at <= {at:DateTime64(3)}) OVER (PARTITION BY field),
        argMin(original_value, changed_at) OVER (PARTITION BY field)) AS value_as_of
FROM
(
    SELECT timestamp AS changed_at, 'recorded' AS change, '' AS actor_id, f.1 AS field, '' AS original_value,
           f.2 AS new_value, rationale AS reason, '' AS reference
    FROM decisions FINAL
    ARRAY JOIN [('outcome', outcome), ('reasons', toJSONString(reasons)),
                ('confidence', ifNull(toString(confidence), '')), ('model_version', model_version),
                ('inputs', inputs)] AS f
    WHERE decision_id = {decision_id:String}
    UNION ALL
    SELECT timestamp, concat('review: ', action), reviewer_id,
           if(new_outcome != '' AND new_outcome != original_outcome, 'outcome', ''), original_outcome,
           if(new_outcome != '' AND new_outcome != original_outcome, new_outcome, ''), reason, ''
    FROM decision_reviews FINAL
    WHERE decision_id = {decision_id:String}
    UNION ALL
    SELECT timestamp, type, actor_id, if(type = 'correction', field, ''), original_value,
           if(type = 'correction', new_value, channel), reason, reference
    FROM decision_events FINAL
    WHERE decision_id = {decision_id:String}
    UNION ALL
    SELECT min(at), concat('legal hold ', action), any(actor), '', '', hold_id, any(reason), any(reference)
    FROM legal_holds
    WHERE hold_id IN (
        SELECT hold_id FROM legal_holds
        WHERE action = 'place' AND (
               (scope = 'decision' AND target = {decision_id:String})
            OR (scope = 'subject' AND target IN (SELECT subject_id FROM decisions WHERE decision_id = {decision_id:String}))
            OR (scope = 'flow_run' AND target IN (SELECT flow_run_id FROM decisions WHERE decision_id = {decision_id:String}))
            OR (scope = 'decision_type' AND target IN (SELECT decision_type FROM decisions WHERE decision_id = {decision_id:String})))
    )
    GROUP BY hold_id, action
)
ORDER BY changed_at, change, field
