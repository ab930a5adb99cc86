-- name: adverse_impact_monthly
-- title: Approval rate and adverse-impact ratio by segment and month
-- description: For each calendar month (UTC) and segment (decision.segment, e.g. an age band): decisions,
-- description: favourable outcomes, the favourable rate, the best segment's rate that month, and the
-- description: adverse-impact ratio (the rate divided by that month's best rate; empty when no segment had a
-- description: favourable outcome). Below 0.8 fails the four-fifths rule.
-- regulations: ECOA / Reg B 12 CFR 1002.4 and 1002.6 (disparate impact); EU AI Act Art. 10(2)(f); NYC LL 144
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: favourable_outcomes Array(String) = approve | outcomes that are favourable to the subject
-- param: decision_type String = credit.approval | decision type to compare (empty: all)
-- param: four_fifths Float64 = 0.8 | ratio below which a segment is flagged
SELECT
    month,
    segment,
    decisions,
    favourable,
    round(rate, 4) AS favourable_rate,
    round(best, 4) AS best_rate,
    if(best > 0, round(rate / best, 4), NULL) AS adverse_impact_ratio,
    CAST(best > 0 AND rate / best < {four_fifths:Float64} AS Bool) AS below_four_fifths
FROM
(
    SELECT
        month,
        segment,
        decisions,
        favourable,
        favourable / decisions AS rate,
        max(favourable / decisions) OVER (PARTITION BY month) AS best
    FROM
    (
        SELECT
            toStartOfMonth(timestamp) AS month,
            segment,
            count() AS decisions,
            countIf(has({favourable_outcomes:Array(String)}, outcome)) AS favourable
        FROM decisions FINAL
        WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
          AND segment != ''
          AND ({decision_type:String} = '' OR decision_type = {decision_type:String})
        GROUP BY month, segment
    )
)
ORDER BY month, segment
