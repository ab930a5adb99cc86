-- name: subject_decisions
-- title: Every decision about one data subject, with explanation, inputs digest, model and review
-- description: Answers a data subject access request or a request for an explanation: each decision about the
-- description: (pseudonymised) subject, its rationale and ranked reasons, the digest of the inputs used, the model
-- description: version, and whether and how a human reviewed it.
-- regulations: GDPR Art. 15(1)(h); GDPR Art. 22(3); EU AI Act Art. 86
-- param: subject_id String | pseudonymised subject id (decision.subject.id): `otel-decisions pseudonymise RAW_ID` computes it with the same key
-- The subject's decisions are the join's build side, so the join filters decision_reviews by their
-- ids while it reads it (a runtime join filter) instead of aggregating every review first.
-- Copies of a re-delivered decision or review are identical rows: grouping by decision_id and
-- counting distinct review ids gives each once, without FINAL.
SELECT
    d.decision_id AS decision_id,
    any(d.timestamp) AS timestamp,
    any(d.decision_type) AS decision_type,
    any(d.outcome) AS outcome,
    any(d.confidence) AS confidence,
    any(d.rationale) AS rationale,
    any(d.reasons) AS reasons,
    any(d.inputs_digest) AS inputs_digest,
    any(d.model_name) AS model_name,
    any(d.model_version) AS model_version,
    any(d.automation) AS automation,
    uniqExactIf(r.review_id, r.review_id != '') AS review_count,
    argMax(r.action, r.timestamp) AS last_review_action,
    argMax(r.reviewer_id, r.timestamp) AS last_reviewer_id,
    if(argMaxIf(r.new_outcome, r.timestamp, r.new_outcome != '') AS reviewed_outcome != '', reviewed_outcome, outcome) AS final_outcome
FROM decision_reviews AS r
RIGHT JOIN
(
    SELECT decision_id, timestamp, decision_type, outcome, confidence, rationale, reasons, inputs_digest, model_name, model_version, automation
    FROM decisions
    WHERE subject_id = {subject_id:String}
) AS d ON r.decision_id = d.decision_id
GROUP BY d.decision_id
ORDER BY timestamp, decision_id
