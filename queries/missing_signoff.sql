-- name: missing_signoff
-- title: Decisions that need a supervisor's sign-off and have none
-- description: Decisions in the period flagged review-required, or made with a human in the loop, for which no
-- description: reviewer has signed off (approved, overridden or rejected; an escalation or a comment is not a
-- description: sign-off), with their age in hours now and the non-sign-off reviews they did get.
-- regulations: FINRA Rule 3110(b) (supervisory review); EU AI Act Art. 14; GDPR Art. 22(3)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (decision time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (decision time), exclusive (UTC)
-- param: signoff_actions Array(String) = approve,override,reject | review actions that count as sign-off
-- param: min_age_hours Float64 = 0 | only decisions at least this many hours old (a grace period for review)
SELECT
    d.decision_id AS decision_id,
    d.timestamp AS timestamp,
    d.decision_type AS decision_type,
    d.outcome AS outcome,
    d.review_required AS review_required,
    d.automation AS automation,
    d.model_name AS model_name,
    d.model_version AS model_version,
    d.flow_run_id AS flow_run_id,
    round((toUnixTimestamp64Milli(now64(3)) - toUnixTimestamp64Milli(toDateTime64(d.timestamp, 3))) / 3600000, 2) AS age_hours,
    r.other_reviews AS other_reviews,
    r.other_actions AS other_actions
FROM decisions AS d FINAL
LEFT JOIN
(
    SELECT
        decision_id,
        countIf(has({signoff_actions:Array(String)}, action)) AS signoffs,
        countIf(NOT has({signoff_actions:Array(String)}, action)) AS other_reviews,
        arraySort(groupUniqArrayIf(action, NOT has({signoff_actions:Array(String)}, action))) AS other_actions
    FROM decision_reviews FINAL
    GROUP BY decision_id
) AS r ON r.decision_id = d.decision_id
WHERE d.timestamp >= {start:DateTime64(3)} AND d.timestamp < {end:DateTime64(3)}
  AND (d.review_required OR d.automation = 'human_in_loop')
  AND r.signoffs = 0
  AND age_hours >= {min_age_hours:Float64}
ORDER BY timestamp, decision_id
