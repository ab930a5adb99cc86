-- name: access_audit
-- title: Who read or exported decision records, and which subjects' or PHI-flagged ones
-- description: Every read of decision data in the last days: by otel-decisions commands (query run, report,
-- description: export-trace: the database and OS user, the query, the subjects asked about, rows returned and how
-- description: many were PHI-flagged) and raw SQL reads of the decision tables from the database's own query log
-- description: (source query_log: user, query text, tables; whether they touched PHI is unknown). Filter by subject
-- description: (pseudonymised id) or keep only PHI-flagged and possibly-PHI reads and exports.
-- regulations: HIPAA 45 CFR 164.312(b) (audit controls); HIPAA 164.308(a)(1)(ii)(D) (activity review); GDPR Art. 30, 32
-- param: days UInt32 = 30 | how many days back
-- param: subject_id String = | only reads about this pseudonymised subject (empty: all)
-- param: phi_only Bool = false | only reads and exports that returned PHI-flagged records (or raw SQL reads)
SELECT
    at,
    source,
    db_user,
    os_user,
    command,
    query_name,
    subject_ids,
    tables,
    rows,
    phi_rows,
    multiIf(phi_rows > 0, 'yes', source = 'query_log', 'unknown (raw SQL)', 'no') AS phi,
    export_format,
    parameters
FROM access_log
WHERE at >= now64(6) - toIntervalDay({days:UInt32})
  AND ({subject_id:String} = '' OR has(subject_ids, {subject_id:String}))
  AND (NOT {phi_only:Bool} OR phi_rows > 0 OR source = 'query_log')
ORDER BY at, db_user
