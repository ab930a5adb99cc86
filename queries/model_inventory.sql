-- name: model_inventory
-- title: Model versions in use
-- description: Every model name and version that made decisions in the period: how many, first and last use,
-- description: mean confidence, share fully automated, and whether an approval covers it now.
-- regulations: EU AI Act Art. 11 and Annex IV (technical documentation); EU AI Act Art. 49 (registration); SR 11-7 model inventory
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: flow_run_id String = | only decisions of this Prefect flow run (empty: all)
SELECT
    model_name,
    model_version,
    count() AS decisions,
    min(timestamp) AS first_used,
    max(timestamp) AS last_used,
    round(avg(confidence), 4) AS mean_confidence,
    round(countIf(automation = 'automated') / decisions, 4) AS automated_share,
    (model_name, model_version) IN (
        SELECT model_name, model_version FROM model_approvals FINAL
        WHERE approved_from <= now64(3) AND (approved_until IS NULL OR approved_until > now64(3))
    ) AS approved_now
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)} AND model_name != ''
  AND ({flow_run_id:String} = '' OR flow_run_id = {flow_run_id:String})
GROUP BY model_name, model_version
ORDER BY model_name, model_version
