-- name: overrides
-- title: Decisions a human reviewer overrode
-- description: Every override in the period: the original and new outcome, who overrode it, why, and the model
-- description: version that made the original decision.
-- regulations: EU AI Act Art. 14(4)(d); GDPR Art. 22(3); FINRA Rule 3110
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (review time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (review time), exclusive (UTC)
SELECT
    r.review_id AS review_id,
    r.decision_id AS decision_id,
    d.timestamp AS decided_at,
    r.timestamp AS reviewed_at,
    r.reviewer_id AS reviewer_id,
    r.original_outcome AS original_outcome,
    r.new_outcome AS new_outcome,
    r.reason AS reason,
    d.decision_type AS decision_type,
    d.model_name AS model_name,
    d.model_version AS model_version
FROM decision_reviews AS r FINAL
INNER JOIN (SELECT decision_id, timestamp, decision_type, model_name, model_version FROM decisions FINAL) AS d
    ON d.decision_id = r.decision_id
WHERE r.action = 'override'
  AND r.timestamp >= {start:DateTime64(3)} AND r.timestamp < {end:DateTime64(3)}
ORDER BY reviewed_at, review_id
