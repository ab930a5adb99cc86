-- name: subject_decisions
-- title: Every decision about one data subject: reasons, data sources, human involvement, retention date
-- description: Answers a data subject access request or a request for an explanation: each decision about the
-- description: (pseudonymised) subject, its rationale and ranked reasons, the digest of the inputs used, the model
-- description: version, the data sources and dataset versions used, the GDPR 22(2) legal basis, whether and how a
-- description: human reviewed it, how many corrections it has, until when it is kept (and why) and whether a legal
-- description: hold covers it.
-- regulations: GDPR Art. 15(1)(h); GDPR Art. 22(3); EU AI Act Art. 86
-- param: subject_id String | pseudonymised subject id (decision.subject.id): `otel-decisions pseudonymise RAW_ID` computes it with the same key
-- The subject's decisions are the join's build side, so the join filters decision_reviews by their
-- ids while it reads it (a runtime join filter) instead of aggregating every review first.
-- Copies of a re-delivered decision or review: grouping by decision_id, taking each field from the
-- newest copy (a migration re-derives rows with new columns) and counting distinct review ids gives
-- each once, without FINAL.
SELECT
    d.decision_id AS decision_id,
    argMax(d.timestamp, d.ingested_at) AS timestamp,
    argMax(d.decision_type, d.ingested_at) AS decision_type,
    argMax(d.outcome, d.ingested_at) AS outcome,
    argMax(d.confidence, d.ingested_at) AS confidence,
    argMax(d.rationale, d.ingested_at) AS rationale,
    argMax(d.reasons, d.ingested_at) AS reasons,
    argMax(d.inputs_digest, d.ingested_at) AS inputs_digest,
    argMax(d.model_name, d.ingested_at) AS model_name,
    argMax(d.model_version, d.ingested_at) AS model_version,
    argMax(d.automation, d.ingested_at) AS automation,
    argMax(d.legal_basis, d.ingested_at) AS legal_basis,
    argMax(d.data_sources, d.ingested_at) AS data_sources,
    argMax(d.dataset_versions, d.ingested_at) AS dataset_versions,
    argMax(d.retention_until, d.ingested_at) AS retention_until,
    argMax(d.retention_basis, d.ingested_at) AS retention_basis,
    argMax(d.on_hold, d.ingested_at) AS on_hold,
    argMax(d.corrections, d.ingested_at) AS corrections,
    uniqExactIf(r.review_id, r.review_id != '') AS review_count,
    argMax(r.action, r.timestamp) AS last_review_action,
    argMax(r.reviewer_id, r.timestamp) AS last_reviewer_id,
    if(argMaxIf(r.new_outcome, r.timestamp, r.new_outcome != '') AS reviewed_outcome != '', reviewed_outcome, outcome) AS final_outcome
FROM decision_reviews AS r
RIGHT JOIN
(
    SELECT s.*, e.corrections AS corrections
    FROM
    (
        SELECT decision_id, ingested_at, timestamp, decision_type, outcome, confidence, rationale, reasons, inputs_digest,
               model_name, model_version, automation, legal_basis, data_sources, dataset_versions, retention_until, retention_basis,
               (decision_id IN (SELECT target FROM active_legal_holds WHERE scope = 'decision')
                OR subject_id IN (SELECT target FROM active_legal_holds WHERE scope = 'subject')
                OR flow_run_id IN (SELECT target FROM active_legal_holds WHERE scope = 'flow_run')
                OR decision_type IN (SELECT target FROM active_legal_holds WHERE scope = 'decision_type')) AS on_hold
        FROM decisions
        WHERE subject_id = {subject_id:String}
    ) AS s
    LEFT JOIN
    (
        SELECT decision_id, uniqExact(event_id) AS corrections
        FROM decision_events
        WHERE type = 'correction'
          AND decision_id IN (SELECT decision_id FROM decisions WHERE subject_id = {subject_id:String})
        GROUP BY decision_id
    ) AS e ON e.decision_id = s.decision_id
) AS d ON r.decision_id = d.decision_id
GROUP BY d.decision_id
ORDER BY timestamp, decision_id
