-- name: fast_reviews
-- title: Reviews too fast to be real
-- description: Human reviews recorded less than a minimum number of seconds after the decision: oversight that
-- description: cannot have looked at the case ("rubber-stamping").
-- regulations: EU AI Act Art. 14(4); GDPR Art. 22(3) (meaningful human intervention)
-- param: max_seconds Float64 = 10 | reviews faster than this many seconds are listed
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (review time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (review time), exclusive (UTC)
SELECT
    r.review_id AS review_id,
    r.decision_id AS decision_id,
    r.reviewer_id AS reviewer_id,
    r.action AS action,
    d.timestamp AS decided_at,
    r.timestamp AS reviewed_at,
    round((toUnixTimestamp64Nano(r.timestamp) - toUnixTimestamp64Nano(d.timestamp)) / 1e9, 3) AS seconds_to_review
FROM decision_reviews AS r FINAL
INNER JOIN (SELECT decision_id, timestamp FROM decisions FINAL) AS d ON d.decision_id = r.decision_id
WHERE r.timestamp >= {start:DateTime64(3)} AND r.timestamp < {end:DateTime64(3)}
  AND r.action != 'comment'  -- a comment is not oversight
  AND (toUnixTimestamp64Nano(r.timestamp) - toUnixTimestamp64Nano(d.timestamp)) / 1e9 < {max_seconds:Float64}
ORDER BY seconds_to_review, review_id
