-- name: retention_summary
-- title: Stored decisions by retention class
-- description: For each retention class: decisions stored, the oldest and newest. Shows what a retention run
-- description: would keep, and that required records are still there.
-- regulations: FINRA Rule 4511(b); SEC Rule 17a-4(b)(4); HIPAA 164.316(b)(2); GDPR Art. 5(1)(e)
SELECT
    retention_class,
    count() AS decisions,
    min(timestamp) AS oldest,
    max(timestamp) AS newest
FROM decisions FINAL
GROUP BY retention_class
ORDER BY retention_class
