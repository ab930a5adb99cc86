-- name: score_distribution
-- title: Distribution of model scores by decision type and outcome
-- description: A histogram over [0, 1] of the recorded model score (the confidence where no score is recorded),
-- description: per decision type and outcome: bin (0 to bins - 1), its bounds and the decisions in it. Shows where
-- description: decisions sit against the threshold and whether outcomes follow the score. Values outside [0, 1]
-- description: are left out.
-- regulations: EU AI Act Art. 15 (accuracy); EU AI Act Art. 72 (post-market monitoring); SR 11-7 outcomes analysis
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: bins UInt32 = 20 | number of equal-width bins over [0, 1]
-- param: flow_run_id String = | only decisions of this Prefect flow run (empty: all)
SELECT
    decision_type,
    outcome,
    least(toUInt32(floor(ifNull(score, confidence) * {bins:UInt32})), {bins:UInt32} - 1) AS bin,
    round(bin / {bins:UInt32}, 4) AS bin_from,
    round((bin + 1) / {bins:UInt32}, 4) AS bin_to,
    count() AS decisions
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
  AND ({flow_run_id:String} = '' OR flow_run_id = {flow_run_id:String})
  AND ifNull(score, confidence) IS NOT NULL
  AND ifNull(score, confidence) BETWEEN 0 AND 1
GROUP BY decision_type, outcome, bin
ORDER BY decision_type, outcome, bin
