-- name: reason_quality
-- title: Adverse-action reasons that are vague or name no scored feature
-- description: Every principal reason stated for an adverse decision that an adverse action notice could not use:
-- description: vague reasons (containing one of the vague phrases, as whole words, ignoring case and punctuation,
-- description: e.g. "internal standards", "insufficient score", "other") and reasons that name none of the features
-- description: the model scored (no key of the decision's inputs appears in the text, underscores read as spaces,
-- description: nor a phrase mapped to such a key in feature_phrases). One row per (decision, reason); a reason that
-- description: is both is reported as vague. Decisions stored without inputs are checked for vague reasons only.
-- regulations: Reg B 12 CFR 1002.9(b)(2) and Official Interpretation comment 9(b)(2)-4 (reasons must relate to the factors actually scored); FCRA 615(a)
-- param: start DateTime64(3) = 1970-01-01 00:00:00 | start of the period (decision time), inclusive (UTC)
-- param: end DateTime64(3) = 2100-01-01 00:00:00 | end of the period (decision time), exclusive (UTC)
-- param: adverse_outcomes Array(String) = deny,decline | outcomes that count as adverse action
-- param: decision_type String = | only this decision type (empty: all)
-- param: vague_phrases Array(String) = internal standards,policy,insufficient score,qualifying score,credit score,not qualified,other,unspecified | phrases that make a reason too vague (whole words, case-insensitive)
-- param: feature_phrases Array(String) = credit_history_years:credit history,delinquencies:delinquent,utilisation:revolving,loan_amount:amount of credit,employment_years:employment | feature:phrase pairs; the phrase names that input feature when the decision's inputs have the feature
SELECT
    decision_id,
    timestamp,
    decision_type,
    outcome,
    reason_rank,
    reason,
    if(is_vague, 'vague', 'not a scored feature') AS problem,
    is_vague,
    names_scored_feature,
    scored_features,
    model_name,
    model_version,
    policy_version
FROM
(
    SELECT
        decision_id,
        timestamp,
        decision_type,
        outcome,
        model_name,
        model_version,
        policy_version,
        reason,
        indexOf(reasons, reason) AS reason_rank,
        scored_features,
        -- words only: lower case, every run of non-alphanumerics (underscores, hyphens, punctuation) one space
        concat(' ', trimBoth(replaceRegexpAll(lower(reason), '[^a-z0-9]+', ' ')), ' ') AS reason_words,
        arrayFilter(p -> p != '', arrayMap(p -> trimBoth(replaceRegexpAll(lower(p), '[^a-z0-9]+', ' ')),
            {vague_phrases:Array(String)})) AS vague_words,
        arrayFilter(k -> k != '', arrayMap(k -> trimBoth(replaceRegexpAll(lower(k), '[^a-z0-9]+', ' ')),
            scored_features)) AS feature_words,
        arrayConcat(feature_words, arrayMap(pair -> pair[2], arrayFilter(pair -> length(pair) = 2 AND pair[2] != '' AND has(feature_words, pair[1]),
            arrayMap(e -> arrayMap(p -> trimBoth(replaceRegexpAll(lower(p), '[^a-z0-9]+', ' ')), splitByChar(':', e)),
                {feature_phrases:Array(String)})))) AS naming_words,
        CAST(arrayExists(p -> position(reason_words, concat(' ', p, ' ')) > 0, vague_words) AS Bool) AS is_vague,
        CAST(if(empty(feature_words), NULL,
            arrayExists(p -> position(reason_words, concat(' ', p, ' ')) > 0, naming_words)) AS Nullable(Bool)) AS names_scored_feature
    FROM
    (
        SELECT
            decision_id, timestamp, decision_type, outcome, model_name, model_version, policy_version, reasons,
            JSONExtractKeys(inputs) AS scored_features
        FROM decisions FINAL
        WHERE timestamp >= {start:DateTime64(3)} AND timestamp < {end:DateTime64(3)}
          AND has({adverse_outcomes:Array(String)}, outcome)
          AND ({decision_type:String} = '' OR decision_type = {decision_type:String})
    )
    ARRAY JOIN arrayDistinct(reasons) AS reason
)
WHERE is_vague OR names_scored_feature = false
ORDER BY timestamp, decision_id, reason_rank
