-- name: redaction_summary
-- title: What the privacy pipeline removed, by field and decision type
-- description: How many decisions had each field masked or removed before it was recorded: evidence that
-- description: personal data was minimised at capture time.
-- regulations: GDPR Art. 5(1)(c) (data minimisation); GDPR Art. 25; HIPAA 164.514(b)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
SELECT
    decision_type,
    field,
    count() AS decisions
FROM decisions FINAL
ARRAY JOIN redacted AS field
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
GROUP BY decision_type, field
ORDER BY decision_type, decisions DESC, field
