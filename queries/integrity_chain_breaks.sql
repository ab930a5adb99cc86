-- name: integrity_chain_breaks
-- title: Decisions whose integrity chain does not link
-- description: Decisions whose decision.integrity.prev_hash matches no stored decision's hash (a predecessor was
-- description: deleted or altered), or that carry no hash at all. Chain starts (empty prev_hash) are not listed.
-- regulations: SEC Rule 17a-4(f) (non-rewriteable records); EU AI Act Art. 12; HIPAA 164.312(c)(1) (integrity)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
SELECT
    decision_id,
    timestamp,
    service_name,
    integrity_seq,
    integrity_prev_hash,
    integrity_hash,
    if(integrity_hash = '', 'no hash', 'predecessor missing') AS problem
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
  AND (
        integrity_hash = ''
        OR (integrity_prev_hash != ''
            AND integrity_prev_hash NOT IN (SELECT integrity_hash FROM decisions WHERE integrity_hash != ''))
      )
ORDER BY timestamp, decision_id
