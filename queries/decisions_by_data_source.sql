-- name: decisions_by_data_source
-- title: Decisions that used a data source or a dataset version
-- description: Every decision whose recorded data sources (decision.data_sources) include the source, or whose
-- description: dataset versions (decision.dataset_versions) include the version: what a faulty feed or a
-- description: withdrawn dataset affected. Give either or both (an empty parameter matches nothing).
-- regulations: EU AI Act Art. 12(2)(a), 12(3)(b) (reference databases and input data); EU AI Act Art. 10
-- param: source String = | a data source, e.g. credit-bureau
-- param: dataset_version String = | a dataset version, e.g. bureau-extract@2026-11-30
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
SELECT
    decision_id,
    timestamp,
    decision_type,
    outcome,
    model_name,
    model_version,
    data_sources,
    dataset_versions
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
  AND ((notEmpty({source:String}) AND has(data_sources, {source:String}))
       OR (notEmpty({dataset_version:String}) AND has(dataset_versions, {dataset_version:String})))
ORDER BY timestamp, decision_id
