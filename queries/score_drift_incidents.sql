-- name: score_drift_incidents
-- title: Score drift per model version, and the decisions made during an open incident
-- description: Weekly decisions, mean and median score per model version with the change of the mean from the
-- description: previous week, and how many of that week's decisions fell inside an incident open on that model
-- description: (or that version) at decision time (`otel-decisions incident open`), with the incidents' ids.
-- regulations: EU AI Act Art. 72 (post-market monitoring); EU AI Act Art. 73 (serious incidents); SR 11-7
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
WITH (
    SELECT groupArray((incident_id, model_name, model_version, opened_at, closed_at)) FROM incidents FINAL
) AS open_incidents
SELECT
    model_name,
    model_version,
    week,
    decisions,
    mean_score,
    median_score,
    if(row_number() OVER w = 1, NULL, round(mean_score - lagInFrame(mean_score) OVER w, 4)) AS change_from_previous_week,
    in_incident,
    incident_ids
FROM
(
    SELECT
        model_name,
        model_version,
        toMonday(timestamp) AS week,
        count() AS decisions,
        round(avg(score), 4) AS mean_score,
        round(quantileExact(0.5)(score), 4) AS median_score,
        countIf(notEmpty(hits)) AS in_incident,
        arraySort(groupUniqArrayArray(arrayMap(i -> i.1, hits))) AS incident_ids
    FROM
    (
        SELECT model_name, model_version, timestamp, score,
               arrayFilter(i -> i.2 = model_name AND (i.3 = '' OR i.3 = model_version) AND i.4 <= timestamp
                                AND (isNull(i.5) OR timestamp < i.5), open_incidents) AS hits
        FROM decisions FINAL
        WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)} AND score IS NOT NULL
    )
    GROUP BY model_name, model_version, week
)
WINDOW w AS (PARTITION BY model_name, model_version ORDER BY week ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
ORDER BY model_name, model_version, week
