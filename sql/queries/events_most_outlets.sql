-- Which events of the last 7 days did the most outlets carry? One row per event holding a
-- relevant story: its first headline, how many outlets and stories, and the topics it counts for.
WITH relevant AS (
    SELECT coalesce(e.event_id, s.story_id) AS event_id, list(DISTINCT sc.topic) AS topics
    FROM story_scores AS sc
    JOIN rule_versions AS v USING (topic, rules_version)
    JOIN stories AS s USING (story_id)
    LEFT JOIN story_events AS e USING (story_id)
    WHERE v.is_current AND sc.relevant AND s.event_at >= now() - INTERVAL 7 DAY
    GROUP BY ALL
)
SELECT r.event_id, first.title AS first_headline, first.event_at AS first_seen,
       count(DISTINCT coalesce(f.outlet, s.feed_id)) AS outlets, count(*) AS stories, r.topics
FROM relevant AS r
JOIN stories AS first ON first.story_id = r.event_id
JOIN stories AS s ON coalesce((SELECT e.event_id FROM story_events AS e
                               WHERE e.story_id = s.story_id), s.story_id) = r.event_id
LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
GROUP BY ALL
ORDER BY outlets DESC, stories DESC, first_seen DESC
LIMIT 20;
