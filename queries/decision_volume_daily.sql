-- name: decision_volume_daily
-- title: Decisions per day and type
-- description: Daily count of decisions by type and automation level, with adverse and reviewed counts: the
-- description: activity log an examiner starts from.
-- regulations: EU AI Act Art. 12 (record-keeping); EU AI Act Art. 19 (automatically generated logs); FINRA Rule 4511
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: adverse_outcomes Array(String) = deny,decline | outcomes that count as adverse
SELECT
    toDate(timestamp) AS day,
    decision_type,
    automation,
    count() AS decisions,
    countIf(has({adverse_outcomes:Array(String)}, outcome)) AS adverse,
    countIf(decision_id IN (SELECT decision_id FROM decision_reviews WHERE action != 'comment')) AS reviewed
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
GROUP BY day, decision_type, automation
ORDER BY day, decision_type, automation
