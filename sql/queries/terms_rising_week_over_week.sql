-- Which signal terms are rising fastest? Per topic, how many relevant stories each term scored
-- in this week (the last 7 days) against the week before, fastest risers first.
WITH terms AS (
    SELECT sc.topic, x ->> 'term' AS term,
           s.event_at >= now() - INTERVAL 7 DAY AS this_week
    FROM story_scores AS sc
    JOIN rule_versions AS v USING (topic, rules_version)
    JOIN stories AS s USING (story_id),
         unnest(CAST(sc.matches -> '$.signals' AS JSON[])) AS t(x)
    WHERE v.is_current AND sc.relevant AND CAST(x ->> 'points' AS DOUBLE) <> 0
      AND s.event_at >= now() - INTERVAL 14 DAY
)
SELECT topic, term,
       count(*) FILTER (WHERE this_week)     AS this_week,
       count(*) FILTER (WHERE NOT this_week) AS week_before,
       count(*) FILTER (WHERE this_week) - count(*) FILTER (WHERE NOT this_week) AS change
FROM terms
GROUP BY ALL
ORDER BY change DESC, this_week DESC, topic, term
LIMIT 25;
