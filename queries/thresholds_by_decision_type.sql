-- name: thresholds_by_decision_type
-- title: The threshold in force for each decision type, and whether it changed
-- description: For each decision type: decisions, how many carry a model score, the threshold recorded most often
-- description: (empty when none is recorded) and how many distinct thresholds were used. More than one threshold
-- description: in a period means the cut-off changed: check that the change was approved.
-- regulations: EU AI Act Annex IV(2)(b) (design choices); EU AI Act Art. 12; SR 11-7 model documentation
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: flow_run_id String = | only decisions of this Prefect flow run (empty: all)
SELECT
    decision_type,
    decisions,
    scored_decisions,
    if(empty(top_thresholds), NULL, top_thresholds[1]) AS usual_threshold,
    distinct_thresholds
FROM
(
    SELECT
        decision_type,
        count() AS decisions,
        countIf(score IS NOT NULL) AS scored_decisions,
        topKIf(1)(threshold, threshold IS NOT NULL) AS top_thresholds,
        uniqExact(threshold) AS distinct_thresholds
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
      AND ({flow_run_id:String} = '' OR flow_run_id = {flow_run_id:String})
    GROUP BY decision_type
)
ORDER BY decision_type
