-- Threat or act? Per topic and day of the current month, the points of threat-class signals
-- (warnings, threats) against act-class ones (strikes, sanctions imposed): GPR's split.
SELECT topic, bucket::DATE AS day, relevant_stories,
       round(threat_sum, 1) AS threat, round(act_sum, 1) AS act,
       round(act_sum / nullif(threat_sum + act_sum, 0), 2) AS act_share,
       poor_coverage
FROM topic_daily
WHERE bucket >= date_trunc('month', now())
ORDER BY topic, day;
