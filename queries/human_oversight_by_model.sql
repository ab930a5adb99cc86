-- name: human_oversight_by_model
-- title: Review flags, reviews, overrides and escalations per model version
-- description: For each model version: decisions made in the period, decisions flagged for human review,
-- description: decisions a human reviewed, overrode and escalated (each decision counted once, whenever its
-- description: review happened). Flagged decisions far outnumbering reviewed ones is an oversight gap.
-- regulations: EU AI Act Art. 14(4); GDPR Art. 22(3); SR 11-7 ongoing monitoring
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (decision time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (decision time), exclusive (UTC)
-- param: flow_run_id String = | only decisions of this Prefect flow run (empty: all)
SELECT
    d.model_name AS model_name,
    d.model_version AS model_version,
    count() AS decisions,
    countIf(d.review_required) AS review_required,
    countIf(r.decision_id != '') AS reviewed,
    countIf(r.was_overridden = 1) AS overridden,
    countIf(r.was_escalated = 1) AS escalated
FROM
(
    SELECT decision_id, model_name, model_version, review_required
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
      AND ({flow_run_id:String} = '' OR flow_run_id = {flow_run_id:String})
) AS d
LEFT JOIN
(
    SELECT decision_id, max(action = 'override') AS was_overridden, max(action = 'escalate') AS was_escalated
    FROM decision_reviews FINAL
    WHERE action != 'comment'  -- a comment is not oversight
    GROUP BY decision_id
) AS r ON r.decision_id = d.decision_id
GROUP BY model_name, model_version
ORDER BY model_name, model_version
