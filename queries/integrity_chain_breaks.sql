-- name: integrity_chain_breaks
-- title: Integrity of every decision hash chain (altered, missing or re-linked records)
-- description: One row per hash chain (one per recording process) over every delivered decision span: records,
-- description: sequence range, records missing from the sequence, links whose prev_hash matches no stored hash,
-- description: and records whose stored fields no longer produce their hash (recomputed here with SHA-256 over
-- description: the same material as otel_decisions.decision.chain_material). status is 'intact' or 'BROKEN'.
-- description: A chain that crosses the period's edges reports the records outside it as missing: check the whole
-- description: period for a full verdict (`otel-decisions verify` also checks the typed decisions table).
-- regulations: SEC Rule 17a-4(f) (non-rewriteable records); EU AI Act Art. 12; HIPAA 164.312(c)(1) (integrity)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
WITH records AS (
    SELECT
        SpanAttributes['decision.integrity.chain'] AS chain,
        toInt64OrZero(SpanAttributes['decision.integrity.seq']) AS seq,
        any(SpanAttributes['decision.integrity.hash']) AS stored_hash,
        any(SpanAttributes['decision.integrity.prev_hash']) AS prev_hash,
        any(lower(hex(SHA256(concat(
            SpanAttributes['decision.integrity.prev_hash'], '|', SpanAttributes['decision.integrity.seq'], '|',
            SpanAttributes['decision.id'], '|', toString(toUnixTimestamp64Nano(Timestamp)), '|',
            SpanAttributes['decision.type'], '|', SpanAttributes['decision.outcome'], '|',
            SpanAttributes['decision.inputs.digest']))))) AS computed_hash,
        any(ServiceName) AS service_name,
        min(Timestamp) AS decided_at
    FROM otel_traces
    WHERE Timestamp >= {start:DateTime64(3)} AND Timestamp < {end:DateTime64(3)}
      AND startsWith(SpanName, 'decision ')
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
    countIf(computed_hash != stored_hash) AS altered_records,
    min(decided_at) AS first_decision_at,
    max(decided_at) AS last_decision_at,
    if(missing_records = 0 AND broken_links = 0 AND altered_records = 0, 'intact', 'BROKEN') AS status
FROM records
GROUP BY chain
ORDER BY status = 'intact', first_decision_at, chain
