-- name: subject_decisions
-- title: Every decision about one data subject, with explanation, inputs digest, model and review
-- description: Answers a data subject access request or a request for an explanation: each decision about the
-- description: (pseudonymised) subject, its rationale and ranked reasons, the digest of the inputs used, the model
-- description: version, and whether and how a human reviewed it.
-- regulations: GDPR Art. 15(1)(h); GDPR Art. 22(3); EU AI Act Art. 86
-- param: subject_id String | pseudonymised subject id (decision.subject.id): `otel-decisions pseudonymise RAW_ID` computes it with the same key
SELECT
    d.decision_id AS decision_id,
    d.timestamp AS timestamp,
    d.decision_type AS decision_type,
    d.outcome AS outcome,
    d.confidence AS confidence,
    d.rationale AS rationale,
    d.reasons AS reasons,
    d.inputs_digest AS inputs_digest,
    d.model_name AS model_name,
    d.model_version AS model_version,
    d.automation AS automation,
    r.review_count AS review_count,
    r.last_action AS last_review_action,
    r.last_reviewer_id AS last_reviewer_id,
    if(r.final_outcome != '', r.final_outcome, d.outcome) AS final_outcome
FROM decisions AS d FINAL
LEFT JOIN
(
    SELECT
        decision_id,
        count() AS review_count,
        argMax(action, timestamp) AS last_action,
        argMax(reviewer_id, timestamp) AS last_reviewer_id,
        argMaxIf(new_outcome, timestamp, new_outcome != '') AS final_outcome
    FROM decision_reviews FINAL
    GROUP BY decision_id
) AS r ON r.decision_id = d.decision_id
WHERE d.subject_id = {subject_id:String}
ORDER BY d.timestamp, d.decision_id
