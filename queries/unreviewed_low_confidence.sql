-- name: unreviewed_low_confidence
-- title: Decisions that needed a human and got none
-- description: Decisions with confidence below the minimum, flagged review-required, or with a score within a
-- description: margin of the threshold, for which no human review was recorded.
-- regulations: EU AI Act Art. 14; GDPR Art. 22(3)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: min_confidence Float64 = 0.6 | confidence below this needs human oversight
-- param: threshold_margin Float64 = 0 | |score - threshold| below this counts as borderline (0: off)
SELECT
    decision_id,
    timestamp,
    decision_type,
    outcome,
    confidence,
    score,
    threshold,
    review_required,
    automation,
    model_name,
    model_version,
    multiIf(
        review_required, 'review required',
        confidence < {min_confidence:Float64}, 'low confidence',
        'near threshold') AS why
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)}
  AND timestamp < {end:DateTime64(3)}
  AND (
        review_required
        OR (confidence IS NOT NULL AND confidence < {min_confidence:Float64})
        OR (score IS NOT NULL AND threshold IS NOT NULL AND abs(score - threshold) < {threshold_margin:Float64})
      )
  -- a comment is not oversight: only a reviewer's decision (approve, override, escalate, reject) counts
  AND decision_id NOT IN (SELECT decision_id FROM decision_reviews WHERE action != 'comment')
ORDER BY timestamp, decision_id
