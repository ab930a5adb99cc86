-- name: reviewer_agreement
-- title: How often each reviewer agrees with the model (automation bias)
-- description: For each (pseudonymised) reviewer: human reviews (comments are not oversight and are left out),
-- description: reviews faster than max_seconds after the decision, agreements with the model (an approval, or an
-- description: override to the outcome the model had already given), the agreement rate, overrides, rejections,
-- description: and always_agrees: at least min_reviews reviews and not one override or rejection. A reviewer who
-- description: always agrees, quickly, is not exercising oversight. The decision time is the stored decision's,
-- description: else the time the review carries.
-- regulations: EU AI Act Art. 14(4)(b) (automation bias); GDPR Art. 22(3) (meaningful human intervention)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (review time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (review time), exclusive (UTC)
-- param: max_seconds Float64 = 10 | a review sooner than this many seconds after the decision counts as fast
-- param: min_reviews UInt32 = 5 | fewest reviews before a reviewer can be flagged as always agreeing
SELECT
    reviewer_id,
    count() AS reviews,
    countIf(ifNull(seconds_to_review < {max_seconds:Float64}, false)) AS fast_reviews,
    countIf(action = 'approve' OR (action = 'override' AND new_outcome = model_outcome)) AS agreements,
    round(agreements / reviews, 4) AS agreement_rate,
    countIf(action = 'override') AS overrides,
    countIf(action = 'reject') AS rejects,
    CAST(reviews >= {min_reviews:UInt32} AND overrides = 0 AND rejects = 0 AS Bool) AS always_agrees
FROM
(
    SELECT
        r.reviewer_id AS reviewer_id,
        r.action AS action,
        r.new_outcome AS new_outcome,
        if(r.original_outcome != '', r.original_outcome, d.outcome) AS model_outcome,
        if(d.decision_id != '', toUnixTimestamp64Nano(d.timestamp), r.decided_at_ns) AS decided_ns,
        (toUnixTimestamp64Nano(r.timestamp) - decided_ns) / 1e9 AS seconds_to_review
    FROM decision_reviews AS r FINAL
    LEFT JOIN (SELECT decision_id, timestamp, outcome FROM decisions FINAL) AS d ON d.decision_id = r.decision_id
    WHERE r.timestamp >= {start:DateTime64(3)} AND r.timestamp < {end:DateTime64(3)}
      AND r.action != 'comment'
)
GROUP BY reviewer_id
ORDER BY reviewer_id
