-- name: override_rate_by_reviewer
-- title: Reviews and overrides per reviewer
-- description: For each (pseudonymised) reviewer: reviews done, overrides, override rate and median seconds
-- description: between the decision and the review. A reviewer who never overrides may be rubber-stamping.
-- regulations: EU AI Act Art. 14(4)(b); GDPR Art. 22(3); FINRA Rule 3110
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (review time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (review time), exclusive (UTC)
-- param: flow_run_id String = | only decisions of this Prefect flow run (empty: all)
SELECT
    r.reviewer_id AS reviewer_id,
    count() AS reviews,
    countIf(r.action = 'override') AS overrides,
    round(overrides / reviews, 4) AS override_rate,
    round(median((toUnixTimestamp64Nano(r.timestamp) - toUnixTimestamp64Nano(d.timestamp)) / 1e9), 1) AS median_seconds_to_review
FROM decision_reviews AS r FINAL
INNER JOIN
(
    SELECT decision_id, timestamp FROM decisions FINAL
    WHERE ({flow_run_id:String} = '' OR flow_run_id = {flow_run_id:String})
) AS d ON d.decision_id = r.decision_id
WHERE r.timestamp >= {start:DateTime64(3)} AND r.timestamp < {end:DateTime64(3)}
  AND r.action != 'comment'  -- a comment is not oversight
GROUP BY reviewer_id
ORDER BY reviewer_id
