-- name: adverse_action_reasons
-- title: Adverse decisions with their ranked principal reasons
-- description: Every adverse decision in the period with up to four principal reasons in rank order,
-- description: the model and policy in force, as an adverse action notice must state them.
-- regulations: Reg B 12 CFR 1002.9(a)(2) and (b)(2); FCRA 615(a)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: adverse_outcomes Array(String) = deny,decline | outcomes that count as adverse action
-- param: decision_type String = | only this decision type (empty: all)
-- param: flow_run_id String = | only decisions of this Prefect flow run (empty: all)
SELECT
    decision_id,
    timestamp,
    decision_type,
    subject_id,
    outcome,
    reasons[1] AS principal_reason_1,
    reasons[2] AS principal_reason_2,
    reasons[3] AS principal_reason_3,
    reasons[4] AS principal_reason_4,
    length(reasons) AS reason_count,
    model_name,
    model_version,
    policy_version
FROM decisions FINAL
WHERE timestamp >= {start:DateTime64(3)}
  AND timestamp < {end:DateTime64(3)}
  AND has({adverse_outcomes:Array(String)}, outcome)
  AND ({decision_type:String} = '' OR decision_type = {decision_type:String})
  AND ({flow_run_id:String} = '' OR flow_run_id = {flow_run_id:String})
ORDER BY timestamp, decision_id
