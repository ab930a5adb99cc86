-- name: confidence_drift_weekly
-- title: Confidence drift per model version per week
-- description: Weekly mean, 10th percentile and median confidence for each model version, with the change of the
-- description: mean from the previous week. Sudden shifts are a monitoring signal.
-- regulations: EU AI Act Art. 72 (post-market monitoring); EU AI Act Art. 15 (accuracy); SR 11-7
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
SELECT
    model_name,
    model_version,
    week,
    decisions,
    mean_confidence,
    p10_confidence,
    median_confidence,
    if(row_number() OVER w = 1, NULL, round(mean_confidence - lagInFrame(mean_confidence) OVER w, 4)) AS change_from_previous_week
FROM
(
    SELECT
        model_name,
        model_version,
        toMonday(timestamp) AS week,
        count() AS decisions,
        round(avg(confidence), 4) AS mean_confidence,
        quantilesExact(0.1, 0.5)(confidence) AS deciles,
        round(deciles[1], 4) AS p10_confidence,
        round(deciles[2], 4) AS median_confidence
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)} AND confidence IS NOT NULL
    GROUP BY model_name, model_version, week
)
WINDOW w AS (PARTITION BY model_name, model_version ORDER BY week ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY model_name, model_version, week
