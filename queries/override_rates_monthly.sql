-- name: override_rates_monthly
-- title: Override rate by model version, reviewer and month, and overrides without a reason
-- description: For each model version, (pseudonymised) reviewer and calendar month of the review (UTC): human
-- description: reviews (comments are not oversight and are left out), overrides, the override rate, and the
-- description: overrides recorded without a reason (empty or blank), with their review ids. Reviews of a decision
-- description: that is not in the store are shown with an empty model name and version.
-- regulations: EU AI Act Art. 14(4); FINRA Rule 3110 (supervision); SR 11-7 ongoing monitoring
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (review time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (review time), exclusive (UTC)
SELECT
    d.model_name AS model_name,
    d.model_version AS model_version,
    r.reviewer_id AS reviewer_id,
    toStartOfMonth(r.timestamp) AS month,
    count() AS reviews,
    countIf(r.action = 'override') AS overrides,
    round(overrides / reviews, 4) AS override_rate,
    countIf(r.action = 'override' AND match(r.reason, '^\\s*$')) AS overrides_without_reason,
    arraySort(groupArrayIf(r.review_id, r.action = 'override' AND match(r.reason, '^\\s*$'))) AS overrides_without_reason_ids
FROM decision_reviews AS r FINAL
LEFT JOIN (SELECT decision_id, model_name, model_version FROM decisions FINAL) AS d ON d.decision_id = r.decision_id
WHERE r.timestamp >= {start:DateTime64(3)} AND r.timestamp < {end:DateTime64(3)}
  AND r.action != 'comment'
GROUP BY model_name, model_version, reviewer_id, month
ORDER BY month, model_name, model_version, reviewer_id
