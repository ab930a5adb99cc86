-- name: automated_without_legal_basis
-- title: Solely automated decisions with significant effects and no Art. 22(2) basis
-- description: Decisions taken with no human involvement (decision.automation = automated) that have legal or
-- description: similarly significant effects (tagged GDPR-22 in decision.regulations, or of a listed decision type)
-- description: for which no legal basis (decision.legal_basis: contract, law or consent) was recorded.
-- regulations: GDPR Art. 22(1), 22(2)(a)-(c); EU AI Act Art. 86
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: significant_types Array(String) = [] | decision types with significant effects even without a GDPR-22 tag
SELECT
    decision_id,
    timestamp,
    decision_type,
    outcome,
    subject_id,
    model_name,
    model_version,
    regulations
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
  AND automation = 'automated'
  AND (arrayExists(r -> startsWith(upper(replaceAll(r, ' ', '')), 'GDPR-22'), regulations)
       OR has({significant_types:Array(String)}, decision_type))
  AND legal_basis = ''
ORDER BY timestamp, decision_id
