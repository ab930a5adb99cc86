-- name: duplicate_deliveries
-- title: Decision spans delivered more than once
-- description: Decision ids that arrived in otel_traces more than once (retried or replayed delivery). The typed
-- description: decisions table counts each once; this shows the delivery path is retrying and how much.
-- description: recordings counts distinct spans (a retried task that recorded the decision again);
-- description: redeliveries counts the same span arriving again (at-least-once delivery).
-- regulations: FINRA Rule 4511 (accurate records); SEC Rule 17a-4(f)(2) (complete and accurate records)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
SELECT
    SpanAttributes['decision.id'] AS decision_id,
    count() AS deliveries,
    uniqExact(SpanId) AS recordings,
    toInt64(count()) - toInt64(uniqExact(SpanId)) AS redeliveries,
    min(Timestamp) AS decided_at,
    any(SpanName) AS span_name
FROM otel_traces
WHERE Timestamp >= {start:DateTime64(3)} AND Timestamp < {end:DateTime64(3)}
  AND startsWith(SpanName, 'decision ')
  AND SpanAttributes['decision.id'] != ''
GROUP BY decision_id
HAVING deliveries > 1
ORDER BY decided_at, decision_id
