-- Does the Turkish press see a topic before the English-language press?
-- Per topic, week and language: the stories read, the relevant ones, and their share.
SELECT sc.topic, date_trunc('week', s.event_at) AS week, s.language,
       count(*) FILTER (WHERE sc.scored) AS stories_read,
       count(*) FILTER (WHERE sc.relevant) AS relevant_stories,
       round(count(*) FILTER (WHERE sc.relevant) / nullif(count(*) FILTER (WHERE sc.scored), 0), 4)
         AS share
FROM story_scores AS sc
JOIN rule_versions AS v USING (topic, rules_version)
JOIN stories AS s USING (story_id)
WHERE v.is_current AND s.event_at >= now() - INTERVAL 8 WEEK
GROUP BY ALL
ORDER BY sc.topic, week DESC, s.language;
