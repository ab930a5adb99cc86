-- name: review_response_times
-- title: Review requests and how long reviewers took to answer
-- description: Every human review asked for with request_review (a review form in the Prefect UI): when it was
-- description: asked, its deadline, the first review recorded at or after the request, who reviewed (pseudonym),
-- description: the seconds the reviewer took, and the status: reviewed (by the deadline); expired (the request's
-- description: expiry is recorded, or the deadline passed with no review: the decision stands unreviewed, never
-- description: approved; a later review shows in reviewed_at); or waiting.
-- regulations: EU AI Act Art. 14(4); GDPR Art. 22(3); FINRA Rule 3110 (supervision)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (request time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (request time), exclusive (UTC)
-- param: flow_run_id String = | only requests made in this Prefect flow run (empty: all)
-- param: status String = | only this status: reviewed, expired or waiting (empty: all)
SELECT *
FROM
(
    SELECT
        q.decision_id AS decision_id,
        q.reference AS reference,
        q.timestamp AS requested_at,
        fromUnixTimestamp64Nano(q.effective_at_ns) AS due_at,
        if(r.decision_id = '', NULL, r.timestamp) AS reviewed_at,
        r.action AS action,
        r.reviewer_id AS reviewer_id,
        if(r.decision_id = '', NULL,
           round((toUnixTimestamp64Nano(r.timestamp) - toUnixTimestamp64Nano(q.timestamp)) / 1e9, 3)) AS seconds_to_review,
        multiIf(
            (q.decision_id, q.reference) IN (
                SELECT decision_id, reference FROM decision_events FINAL WHERE type = 'review_expired'
            ), 'expired',
            r.decision_id != '' AND r.timestamp <= due_at, 'reviewed',
            due_at < now64(3), 'expired',
            'waiting') AS status
    FROM
    (
        SELECT decision_id, reference, timestamp, effective_at_ns
        FROM decision_events FINAL
        WHERE type = 'review_requested'
          AND timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
          AND ({flow_run_id:String} = '' OR startsWith(reference, concat('flow-run/', {flow_run_id:String}, '/')))
    ) AS q
    ASOF LEFT JOIN
    (
        SELECT decision_id, timestamp, action, reviewer_id
        FROM decision_reviews FINAL
        WHERE action != 'comment'  -- a comment is not a review of the outcome
    ) AS r ON r.decision_id = q.decision_id AND r.timestamp >= q.timestamp
)
WHERE {status:String} = '' OR status = {status:String}
ORDER BY requested_at, decision_id
