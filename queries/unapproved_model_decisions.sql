-- name: unapproved_model_decisions
-- title: Decisions made by a model version not approved at the time
-- description: Decisions whose model name and version had no approval in model_approvals covering the decision
-- description: time (approved_from <= time < approved_until). Maintain approvals with `otel-decisions models approve`.
-- regulations: EU AI Act Art. 17 (quality management); EU AI Act Art. 9; SR 11-7 model governance
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
SELECT
    d.decision_id AS decision_id,
    d.timestamp AS timestamp,
    d.model_name AS model_name,
    d.model_version AS model_version,
    d.decision_type AS decision_type,
    d.outcome AS outcome
FROM
(
    SELECT decision_id, timestamp, model_name, model_version, decision_type, outcome
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)} AND model_name != ''
) AS d
LEFT JOIN
(
    SELECT model_name, model_version, approved_from, approved_until
    FROM model_approvals FINAL
) AS a ON a.model_name = d.model_name AND a.model_version = d.model_version
GROUP BY decision_id, timestamp, model_name, model_version, decision_type, outcome
HAVING countIf(
    a.model_name != ''
    AND d.timestamp >= a.approved_from
    AND (a.approved_until IS NULL OR d.timestamp < a.approved_until)) = 0
ORDER BY timestamp, decision_id
