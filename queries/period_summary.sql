-- name: period_summary
-- title: The period at a glance: decisions, adverse outcomes, reviews and overrides
-- description: One row for the period: decisions recorded, decision types and model versions in use, adverse
-- description: outcomes, decisions flagged for human review, the first and last decision time, and the human
-- description: reviews and overrides recorded in the period (by review time). The headline of an evidence report.
-- regulations: EU AI Act Art. 12 (record-keeping); EU AI Act Art. 14 (human oversight); FINRA Rule 4511
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: adverse_outcomes Array(String) = deny,decline | outcomes that count as adverse
-- param: flow_run_id String = | only decisions of this Prefect flow run (empty: all)
SELECT
    d.decisions AS decisions,
    d.decision_types AS decision_types,
    d.model_versions AS model_versions,
    d.adverse AS adverse,
    d.review_required AS review_required,
    d.first_decision AS first_decision,
    d.last_decision AS last_decision,
    r.reviews AS reviews,
    r.overrides AS overrides
FROM
(
    SELECT
        count() AS decisions,
        uniqExact(decision_type) AS decision_types,
        uniqExact(model_name, model_version) AS model_versions,
        countIf(has({adverse_outcomes:Array(String)}, outcome)) AS adverse,
        countIf(review_required) AS review_required,
        min(timestamp) AS first_decision,
        max(timestamp) AS last_decision
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
      AND ({flow_run_id:String} = '' OR flow_run_id = {flow_run_id:String})
) AS d
CROSS JOIN
(
    SELECT count() AS reviews, countIf(action = 'override') AS overrides
    FROM decision_reviews FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
      AND ({flow_run_id:String} = '' OR decision_id IN (SELECT decision_id FROM decisions WHERE flow_run_id = {flow_run_id:String}))
) AS r
