-- name: missing_rationale
-- title: Decisions recorded without a rationale or principal reasons
-- description: Decisions that cannot be explained from the record: no rationale text, no principal reasons, or
-- description: (for adverse outcomes) no reasons at all, which an adverse action notice needs.
-- regulations: EU AI Act Art. 86; GDPR Art. 15(1)(h); Reg B 12 CFR 1002.9(b)(2)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
SELECT
    decision_id,
    timestamp,
    decision_type,
    outcome,
    rationale = '' AS missing_rationale,
    empty(reasons) AS missing_reasons,
    model_name,
    model_version,
    task_name,
    flow_run_id
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
  AND (rationale = '' OR empty(reasons))
ORDER BY timestamp, decision_id
