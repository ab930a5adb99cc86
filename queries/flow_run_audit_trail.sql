-- name: flow_run_audit_trail
-- title: The full decision audit trail of one flow run
-- description: Every decision and every human review in one Prefect flow run, in time order, with outcome,
-- description: rationale, model, inputs digest and integrity-chain position: the record an examiner asks for.
-- regulations: EU AI Act Art. 12 (record-keeping); FINRA Rule 4511; SEC Rule 17a-4; HIPAA 164.312(b)
-- param: flow_run_id String | Prefect flow run id
SELECT *
FROM
(
    SELECT
        timestamp,
        'decision' AS entry,
        decision_id,
        '' AS review_id,
        decision_type,
        outcome,
        confidence,
        rationale,
        reasons,
        model_name,
        model_version,
        task_name,
        task_run_id,
        '' AS reviewer_id,
        '' AS action,
        inputs_digest,
        integrity_seq,
        integrity_hash
    FROM decisions FINAL
    WHERE flow_run_id = {flow_run_id:String}
    UNION ALL
    SELECT
        r.timestamp,
        'review',
        r.decision_id,
        r.review_id,
        d.decision_type,
        r.new_outcome,
        NULL,
        r.reason,
        [],
        d.model_name,
        d.model_version,
        d.task_name,
        d.task_run_id,
        r.reviewer_id,
        r.action,
        '',
        NULL,
        ''
    FROM decision_reviews AS r FINAL
    INNER JOIN
    (
        SELECT decision_id, decision_type, model_name, model_version, task_name, task_run_id
        FROM decisions FINAL
        WHERE flow_run_id = {flow_run_id:String}
    ) AS d ON d.decision_id = r.decision_id
)
ORDER BY timestamp, entry, decision_id
