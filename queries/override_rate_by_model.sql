-- name: override_rate_by_model
-- title: Human override rate by model version
-- description: For each model version: decisions made, decisions reviewed, decisions overridden by a reviewer,
-- description: and the override rate (of all decisions and of reviewed ones). A rising rate flags a model problem.
-- regulations: EU AI Act Art. 14(4); EU AI Act Art. 72; SR 11-7 ongoing monitoring
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
SELECT
    d.model_name AS model_name,
    d.model_version AS model_version,
    count() AS decisions,
    countIf(r.decision_id != '') AS reviewed,
    countIf(r.was_overridden = 1) AS overridden,
    round(overridden / decisions, 4) AS override_rate,
    round(if(reviewed = 0, 0, overridden / reviewed), 4) AS override_rate_of_reviewed
FROM
(
    SELECT decision_id, model_name, model_version
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
) AS d
LEFT JOIN
(
    SELECT decision_id, max(action = 'override') AS was_overridden
    FROM decision_reviews FINAL
    WHERE action != 'comment'  -- a comment is not oversight
    GROUP BY decision_id
) AS r ON r.decision_id = d.decision_id
GROUP BY model_name, model_version
ORDER BY model_name, model_version
