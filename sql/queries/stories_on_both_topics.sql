-- Which stories are relevant to both topics at once?
-- Türkiye asked to restrain Iran while its exports to Russia are questioned, for example.
-- Newest first, with both scores.
SELECT s.event_at, coalesce(f.outlet, s.feed_id) AS outlet, s.title, s.url,
       max(sc.score) FILTER (WHERE sc.topic = 'iran_israel') AS iran_israel_score,
       max(sc.score) FILTER (WHERE sc.topic = 'tr_ru')       AS tr_ru_score
FROM story_scores AS sc
JOIN rule_versions AS v USING (topic, rules_version)
JOIN stories AS s USING (story_id)
LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
WHERE v.is_current AND sc.relevant
GROUP BY ALL
HAVING count(DISTINCT sc.topic) >= 2
ORDER BY s.event_at DESC
LIMIT 50;
