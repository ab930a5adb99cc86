-- name: outcome_rates_by_segment
-- title: Favourable outcome rate by segment, with the adverse-impact ratio
-- description: For each segment (decision.segment, e.g. an age band): decisions, favourable outcomes, the favourable
-- description: rate, and that rate divided by the highest segment's rate. Below 0.8 fails the four-fifths rule.
-- regulations: ECOA / Reg B 12 CFR 1002.4 and 1002.6 (disparate impact); EU AI Act Art. 10(2)(f); NYC LL 144
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period, inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period, exclusive (UTC)
-- param: favourable_outcomes Array(String) = approve | outcomes that are favourable to the subject
-- param: decision_type String = credit.approval | decision type to compare (empty: all)
-- param: four_fifths Float64 = 0.8 | ratio below which a segment is flagged
SELECT
    segment,
    decisions,
    favourable,
    favourable_rate,
    round(favourable_rate / max(favourable_rate) OVER (), 4) AS adverse_impact_ratio,
    adverse_impact_ratio < {four_fifths:Float64} AS below_four_fifths
FROM
(
    SELECT
        segment,
        count() AS decisions,
        countIf(has({favourable_outcomes:Array(String)}, outcome)) AS favourable,
        round(favourable / decisions, 4) AS favourable_rate
    FROM decisions FINAL
    WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
      AND segment != ''
      AND ({decision_type:String} = '' OR decision_type = {decision_type:String})
    GROUP BY segment
)
ORDER BY segment
