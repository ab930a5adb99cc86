-- name: outcomes_by_model_version
-- title: Decisions by outcome for each model version
-- description: For each model name and version (an empty name: decisions recorded without a model), how many
-- description: decisions of each outcome it made in the period. A version whose outcome mix shifts from its
-- description: predecessor's is a monitoring signal.
-- regulations: EU AI Act Art. 72 (post-market monitoring); EU AI Act Art. 12; SR 11-7 ongoing monitoring
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: flow_run_id String = | only decisions of this Prefect flow run (empty: all)
SELECT
    model_name,
    model_version,
    outcome,
    count() AS decisions
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
  AND ({flow_run_id:String} = '' OR flow_run_id = {flow_run_id:String})
GROUP BY model_name, model_version, outcome
ORDER BY model_name, model_version, outcome
