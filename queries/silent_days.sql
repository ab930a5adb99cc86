-- name: silent_days
-- title: Days on which task runs ran but no decision was recorded
-- description: Each day (UTC) and service on which Prefect shows task runs (Prefect's task-run spans,
-- description: prefect.run.type = task, or spans carrying prefect.task_run.id; decision records excluded) while
-- description: that service stored no decision at all that day: a logging outage or an uninstrumented deployment.
-- regulations: EU AI Act Art. 12(1) (automatic logging over the lifetime of the system); FINRA Rule 4511; SEC Rule 17a-4
-- param: start Date = 1970-01-01 | first day of the period, inclusive (UTC)
-- param: end Date = 2100-01-01 | day after the period, exclusive (UTC)
SELECT
    t.day AS day,
    t.service_name AS service_name,
    t.task_runs AS task_runs,
    d.decisions AS decisions
FROM
(
    SELECT toDate(started) AS day, service_name, count() AS task_runs
    FROM
    (
        SELECT
            if(SpanAttributes['prefect.run.type'] = 'task', SpanAttributes['prefect.run.id'], SpanAttributes['prefect.task_run.id']) AS task_run_id,
            ServiceName AS service_name,
            min(Timestamp) AS started
        FROM otel_traces
        WHERE Timestamp >= {start:Date} AND Timestamp < {end:Date}
          AND NOT startsWith(SpanName, 'decision ')
          AND SpanName NOT IN ('decision.review', 'decision.integrity.checkpoint', 'decision.event')
          AND (SpanAttributes['prefect.run.type'] = 'task' OR SpanAttributes['prefect.task_run.id'] != '')
        GROUP BY task_run_id, service_name
    )
    WHERE task_run_id != ''
    GROUP BY day, service_name
) AS t
LEFT JOIN
(
    SELECT toDate(timestamp) AS day, service_name, count() AS decisions
    FROM decisions FINAL
    WHERE timestamp >= {start:Date} AND timestamp < {end:Date}
    GROUP BY day, service_name
) AS d ON d.day = t.day AND d.service_name = t.service_name
WHERE d.decisions = 0
ORDER BY day, service_name
