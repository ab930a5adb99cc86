-- name: delivery_completeness
-- title: Decisions captured against decisions stored, per flow run
-- description: For each Prefect flow run in the period, the number of decisions the flow recorded (the sum of
-- description: decision.flow.captured over its run spans: the flow-run span, and each task-run span whose process recorded
-- description: decisions, e.g. a process-pool or Dask worker) against the number of distinct decisions stored for that
-- description: flow run. missing > 0 means records are still pending delivery (see `otel-decisions delivery status`) or
-- description: were lost; missing < 0 means decisions arrived from a run whose summary under-counted. The run spans
-- description: carrying the counts are themselves delivered durably.
-- regulations: EU AI Act Art. 12(1) (automatic logging over the lifetime); FINRA Rule 4511; SEC Rule 17a-4
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC, flow-run start)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC, flow-run start)
-- param: only_incomplete UInt8 = 0 | 1: only flow runs where stored differs from captured
SELECT
    runs.flow_run_id AS flow_run_id,
    runs.flow_name AS flow_name,
    runs.started AS started,
    runs.captured AS captured,
    ifNull(stored.stored, 0) AS stored,
    toInt64(runs.captured) - toInt64(ifNull(stored.stored, 0)) AS missing,
    captured = ifNull(stored.stored, 0) AS complete
FROM
(
    SELECT flow_run_id, anyIf(name, is_flow) AS flow_name, min(first_seen) AS started, sum(captured) AS captured
    FROM
    (
        SELECT
            SpanId,
            SpanAttributes['prefect.run.type'] = 'flow' AS is_flow,
            if(is_flow, SpanAttributes['prefect.run.id'], SpanAttributes['prefect.flow_run.id']) AS flow_run_id,
            any(if(SpanAttributes['prefect.flow.name'] != '', SpanAttributes['prefect.flow.name'], SpanName)) AS name,
            min(Timestamp) AS first_seen,
            -- at-least-once delivery may store a span twice: the count is the same, take it once
            max(toUInt64OrZero(SpanAttributes['decision.flow.captured'])) AS captured
        FROM otel_traces
        WHERE mapContains(SpanAttributes, 'decision.flow.captured')
          AND Timestamp >= {start:DateTime64(3)} AND Timestamp < {end:DateTime64(3)}
        GROUP BY SpanId, is_flow, flow_run_id
    )
    GROUP BY flow_run_id
    HAVING flow_run_id != '' AND countIf(is_flow) > 0
) AS runs
LEFT JOIN
(
    SELECT flow_run_id, uniqExact(decision_id) AS stored
    FROM decisions
    WHERE flow_run_id != ''
    GROUP BY flow_run_id
) AS stored ON stored.flow_run_id = runs.flow_run_id
WHERE {only_incomplete:UInt8} = 0 OR captured != ifNull(stored.stored, 0)
ORDER BY started, flow_run_id
