-- name: task_run_accounting
-- title: What the store holds for given Prefect task runs: decisions, or a run span
-- description: For each task run id given, the decisions stored for it and whether its task-run span was stored (the
-- description: run was instrumented). A task run with neither ran in a process that did not record: it is unaccounted.
-- description: `otel-decisions reconcile` asks this for the task runs Prefect's API reports, so the accounting is
-- description: against Prefect's own records, not counters the recording processes kept themselves.
-- regulations: EU AI Act Art. 12(1) (automatic logging over the lifetime); FINRA Rule 4511; SEC Rule 17a-4
-- param: task_run_ids Array(String) = | the task run ids to account for (empty: every task run with a stored span)
SELECT
    id AS task_run_id,
    ifNull(recorded.decisions, 0) AS decisions,
    ifNull(spans.seen, 0) > 0 AS run_span_stored
FROM
(
    SELECT arrayJoin(if(empty({task_run_ids:Array(String)}),
        (SELECT groupUniqArray(SpanAttributes['prefect.run.id']) FROM otel_traces WHERE SpanAttributes['prefect.run.type'] = 'task'),
        {task_run_ids:Array(String)})) AS id
) AS ids
LEFT JOIN
(
    SELECT task_run_id, uniqExact(decision_id) AS decisions
    FROM decisions
    WHERE task_run_id != '' AND (empty({task_run_ids:Array(String)}) OR task_run_id IN {task_run_ids:Array(String)})
    GROUP BY task_run_id
) AS recorded ON recorded.task_run_id = ids.id
LEFT JOIN
(
    SELECT SpanAttributes['prefect.run.id'] AS task_run_id, count() AS seen
    FROM otel_traces
    WHERE SpanAttributes['prefect.run.type'] = 'task'
      AND (empty({task_run_ids:Array(String)}) OR SpanAttributes['prefect.run.id'] IN {task_run_ids:Array(String)})
    GROUP BY task_run_id
) AS spans ON spans.task_run_id = ids.id
ORDER BY task_run_id
