-- Which outlets drive this week's Iran–Israel index? Relevant stories and events per outlet in
-- the last 7 days, their summed score, and each outlet's share of the week's relevant stories.
SELECT coalesce(f.outlet, s.feed_id) AS outlet,
       count(*) AS relevant_stories,
       count(DISTINCT coalesce(e.event_id, s.story_id)) AS events,
       round(sum(sc.score), 1) AS score_sum,
       round(count(*) / sum(count(*)) OVER (), 3) AS share_of_week
FROM story_scores AS sc
JOIN rule_versions AS v USING (topic, rules_version)
JOIN stories AS s USING (story_id)
LEFT JOIN story_events AS e USING (story_id)
LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
WHERE v.is_current AND sc.topic = 'iran_israel' AND sc.relevant
  AND s.event_at >= now() - INTERVAL 7 DAY
GROUP BY ALL
ORDER BY relevant_stories DESC, outlet;
