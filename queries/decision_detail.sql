-- name: decision_detail
-- title: One decision, fully explained
-- description: Everything stored about one decision: outcome, options, confidence, score and threshold, rationale,
-- description: ranked reasons, inputs (after the privacy pipeline) and their digest, model, policy, automation
-- description: level, redactions, integrity chain position, Prefect run, and its reviews.
-- regulations: EU AI Act Art. 86 (right to explanation); GDPR Art. 15(1)(h); GDPR Art. 22(3)
-- param: decision_id String | the decision.id
SELECT
    d.*,
    r.reviews AS reviews
FROM decisions AS d FINAL
LEFT JOIN
(
    SELECT
        decision_id,
        groupArray(tuple(toString(timestamp), reviewer_id, action, new_outcome, reason)) AS reviews
    FROM (SELECT * FROM decision_reviews FINAL WHERE decision_id = {decision_id:String} ORDER BY timestamp)
    GROUP BY decision_id
) AS r ON r.decision_id = d.decision_id
WHERE d.decision_id = {decision_id:String}
