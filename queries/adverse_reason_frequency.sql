-- name: adverse_reason_frequency
-- title: How often each principal reason is given for adverse decisions
-- description: Principal reasons of adverse decisions in the period, ranked by how often they are cited,
-- description: with how often each is the first (most important) reason. Checks that reasons are specific and varied.
-- regulations: Reg B 12 CFR 1002.9(b)(2); Reg B Official Interpretation 9(b)(2)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: adverse_outcomes Array(String) = deny,decline | outcomes that count as adverse action
SELECT
    reason,
    count() AS times_cited,
    countIf(reason_rank = 1) AS times_first,
    round(avg(reason_rank), 3) AS mean_rank
FROM
(
    SELECT decision_id, reasons
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)}
      AND timestamp < {end:DateTime64(3)}
      AND has({adverse_outcomes:Array(String)}, outcome)
)
ARRAY JOIN reasons AS reason, arrayEnumerate(reasons) AS reason_rank
GROUP BY reason
ORDER BY times_cited DESC, reason
