-- name: integrity_chain_breaks
-- title: Integrity of every hash chain: records missing from the sequence and links that do not join
-- description: One row per hash chain (one per recording process) over every delivered decision and review span:
-- description: records, sequence range, records missing from the sequence, links whose prev_hash matches no stored
-- description: hash, and positions claimed by more than one span. status is 'intact' or 'BROKEN'. This is the
-- description: structural view; `otel-decisions verify` also recomputes every hash from the stored attributes,
-- description: checks the typed tables against the spans and the signed checkpoints. A chain that crosses the
-- description: period's edges reports the records outside it as missing: check the whole period for a verdict.
-- regulations: SEC Rule 17a-4(f) (non-rewriteable records); EU AI Act Art. 12; HIPAA 164.312(c)(1) (integrity)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
WITH records AS (
    SELECT
        SpanAttributes['decision.integrity.chain'] AS chain,
        toInt64OrZero(SpanAttributes['decision.integrity.seq']) AS seq,
        any(SpanAttributes['decision.integrity.hash']) AS stored_hash,
        any(SpanAttributes['decision.integrity.prev_hash']) AS prev_hash,
        uniqExact(SpanId) AS spans,
        any(ServiceName) AS service_name,
        min(Timestamp) AS recorded_at
    FROM otel_traces
    WHERE Timestamp >= {start:DateTime64(3)} AND Timestamp < {end:DateTime64(3)}
      AND (startsWith(SpanName, 'decision ') OR SpanName = 'decision.review')
      AND SpanAttributes['decision.integrity.hash'] != ''
    GROUP BY chain, seq
),
known AS (SELECT stored_hash FROM records)
SELECT
    chain,
    any(service_name) AS service_name,
    count() AS records,
    min(seq) AS first_seq,
    max(seq) AS last_seq,
    toInt64(max(seq) - min(seq) + 1 - count()) + toInt64(min(seq) - 1) AS missing_records,
    countIf(prev_hash != '' AND prev_hash NOT IN (SELECT stored_hash FROM known)) AS broken_links,
    countIf(spans > 1) AS forked_positions,
    min(recorded_at) AS first_record_at,
    max(recorded_at) AS last_record_at,
    if(missing_records = 0 AND broken_links = 0 AND forked_positions = 0, 'intact', 'BROKEN') AS status
FROM records
GROUP BY chain
ORDER BY status = 'intact', first_record_at, chain
