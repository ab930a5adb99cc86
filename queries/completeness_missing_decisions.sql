-- name: completeness_missing_decisions
-- title: Task runs with no decision recorded
-- description: Prefect task runs (Prefect's task-run spans, prefect.run.type = task, or spans carrying
-- description: prefect.task_run.id) in the period for which no decision was stored. Proves the record is complete,
-- description: or shows where it is not.
-- regulations: EU AI Act Art. 12(1) (automatic logging over the lifetime); FINRA Rule 4511; SEC Rule 17a-4
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: span_name_like String = % | only task-run spans whose name matches this LIKE pattern
SELECT
    task_run_id,
    span_name,
    flow_run_id,
    started,
    status_code,
    service_name
FROM
(
    SELECT
        if(SpanAttributes['prefect.run.type'] = 'task', SpanAttributes['prefect.run.id'], SpanAttributes['prefect.task_run.id']) AS task_run_id,
        any(SpanName) AS span_name,
        any(SpanAttributes['prefect.flow_run.id']) AS flow_run_id,
        min(Timestamp) AS started,
        anyLast(StatusCode) AS status_code,
        any(ServiceName) AS service_name
    FROM otel_traces
    WHERE Timestamp >= {start:DateTime64(3)} AND Timestamp < {end:DateTime64(3)}
      AND NOT startsWith(SpanName, 'decision ')
      AND SpanName != 'decision.review'
      AND (SpanAttributes['prefect.run.type'] = 'task' OR SpanAttributes['prefect.task_run.id'] != '')
      AND SpanName LIKE {span_name_like:String}
    GROUP BY task_run_id
)
WHERE task_run_id != ''
  AND task_run_id NOT IN (SELECT task_run_id FROM decisions WHERE task_run_id != '')
ORDER BY started, task_run_id
