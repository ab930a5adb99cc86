-- name: adverse_action_notices
-- title: Automated credit denials, their top four reasons, and whether the notice went out in time
-- description: Each automated adverse credit decision in the period with its four principal reasons, the first
-- description: adverse-action notice recorded for it (record_notice / `otel-decisions notice`: when, which channel)
-- description: and the days between the decision and the notice. notice_status: on time (within max_days), late,
-- description: missing (no notice and the deadline has passed) or pending (no notice yet, deadline still open).
-- regulations: Reg B 12 CFR 1002.9(a)(1) (notice within 30 days); Reg B 12 CFR 1002.9(b)(2) (principal reasons); FCRA 615(a)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (decision time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (decision time), exclusive (UTC)
-- param: adverse_outcomes Array(String) = deny,decline | outcomes that are adverse actions
-- param: decision_type String = credit.approval | decision type (empty: all)
-- param: max_days UInt32 = 30 | days allowed between the decision and its notice
-- param: automated_only Bool = true | only solely automated decisions (decision.automation = automated)
SELECT
    d.decision_id AS decision_id,
    d.timestamp AS decided_at,
    d.decision_type AS decision_type,
    d.outcome AS outcome,
    d.model_version AS model_version,
    d.reasons[1] AS principal_reason_1,
    d.reasons[2] AS principal_reason_2,
    d.reasons[3] AS principal_reason_3,
    d.reasons[4] AS principal_reason_4,
    if(n.decision_id = '', NULL, n.first_sent) AS notice_sent_at,
    n.channel AS notice_channel,
    if(n.decision_id = '', NULL, round((toUnixTimestamp64Milli(n.first_sent) - toUnixTimestamp64Milli(d.timestamp)) / 86400000, 2)) AS days_to_notice,
    multiIf(
        n.decision_id != '' AND days_to_notice <= {max_days:UInt32}, 'on time',
        n.decision_id != '', 'late',
        now64(3) > d.timestamp + toIntervalDay({max_days:UInt32}), 'missing',
        'pending') AS notice_status
FROM (
    SELECT decision_id, timestamp, decision_type, outcome, model_version, reasons
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
      AND has({adverse_outcomes:Array(String)}, outcome)
      AND ({decision_type:String} = '' OR decision_type = {decision_type:String})
      AND (NOT {automated_only:Bool} OR automation = 'automated')
) AS d
LEFT JOIN (
    SELECT decision_id, min(fromUnixTimestamp64Nano(effective_at_ns)) AS first_sent,
           argMin(channel, effective_at_ns) AS channel
    FROM decision_events FINAL
    WHERE type = 'notice'
    GROUP BY decision_id
) AS n ON n.decision_id = d.decision_id
ORDER BY decided_at, decision_id
