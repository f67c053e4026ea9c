-- top_stories: per topic and UTC day, the ten highest-scoring relevant stories under the current
-- rules (rank 1 = highest), with the outlet, the link, the event the story belongs to and how
-- many outlets carried that event, and the signal terms that scored.
CREATE VIEW top_stories AS
WITH ranked AS (
    SELECT sc.topic, CAST(s.event_at AT TIME ZONE 'UTC' AS DATE) AS day, sc.score,
           s.story_id, s.title, s.url, coalesce(f.outlet, s.feed_id) AS outlet, s.event_at,
           coalesce(e.event_id, s.story_id) AS event_id,
           [x ->> 'term' FOR x IN CAST(sc.matches -> '$.signals' AS JSON[])
            IF CAST(x ->> 'points' AS DOUBLE) <> 0] AS terms,
           row_number() OVER (PARTITION BY sc.topic, CAST(s.event_at AT TIME ZONE 'UTC' AS DATE)
                              ORDER BY sc.score DESC, s.event_at, s.story_id) AS rank
    FROM story_scores AS sc
    JOIN rule_versions AS v USING (topic, rules_version)
    JOIN stories AS s USING (story_id)
    LEFT JOIN story_events AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
    WHERE v.is_current AND sc.relevant
),
event_outlets AS (
    SELECT coalesce(e.event_id, s.story_id) AS event_id,
           count(DISTINCT coalesce(f.outlet, s.feed_id)) AS event_outlets
    FROM stories AS s
    LEFT JOIN story_events AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
    WHERE coalesce(e.event_id, s.story_id) IN (SELECT event_id FROM ranked WHERE rank <= 10)
    GROUP BY ALL
)
SELECT topic, day, rank, score, title, outlet, url, event_at, story_id, event_id,
       event_outlets, terms
FROM ranked JOIN event_outlets USING (event_id)
WHERE rank <= 10
ORDER BY topic, day, rank;
