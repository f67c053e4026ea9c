-- 003: unscored is not zero. A story in a language a topic has no rules for is recorded as not
-- scored for that topic (story_scores.scored = false), and the topic index counts such stories
-- apart (unscored_stories) instead of counting them as checked and calm: all_stories and share
-- cover the stories the topic's rules could read.

ALTER TABLE story_scores ADD COLUMN scored BOOLEAN DEFAULT true;
UPDATE story_scores SET scored = json_extract(matches, '$.skipped') IS NULL;

DROP VIEW topic_hourly;
DROP VIEW topic_daily;
DROP VIEW topic_hourly_by_version;
DROP VIEW topic_daily_by_version;
DROP MACRO TABLE topic_index_by_version;

-- The topic index per time bucket, as in 002, with unscored_stories beside all_stories.
CREATE MACRO topic_index_by_version(unit) AS TABLE
WITH scored AS (
    SELECT sc.topic, sc.rules_version, date_trunc(unit, s.event_at AT TIME ZONE 'UTC') AS bucket,
           sc.relevant, sc.score, sc.scored, s.feed_id
    FROM story_scores AS sc
    JOIN stories AS s USING (story_id)
),
per_bucket AS (
    SELECT topic, rules_version, bucket,
           count(*) FILTER (WHERE relevant)                 AS relevant_stories,
           count(*) FILTER (WHERE scored)                   AS all_stories,
           count(*) FILTER (WHERE NOT scored)               AS unscored_stories,
           coalesce(sum(score) FILTER (WHERE relevant), 0)  AS score_sum,
           avg(score) FILTER (WHERE relevant)               AS score_mean,
           count(DISTINCT feed_id) FILTER (WHERE relevant)  AS outlets
    FROM scored
    GROUP BY ALL
),
polling AS (
    SELECT date_trunc(unit, started_at AT TIME ZONE 'UTC') AS bucket,
           count(DISTINCT feed_id) FILTER (WHERE outcome <> 'error') AS feeds_answered,
           count(DISTINCT feed_id)                                   AS feeds_polled
    FROM fetches
    GROUP BY ALL
)
SELECT p.topic, p.rules_version, p.bucket,
       p.relevant_stories, p.all_stories, p.unscored_stories,
       p.relevant_stories / nullif(p.all_stories, 0) AS share,
       p.score_sum, p.score_mean, p.outlets,
       polling.feeds_answered, polling.feeds_polled,
       polling.feeds_answered / polling.feeds_polled AS coverage
FROM per_bucket AS p
LEFT JOIN polling USING (bucket)
ORDER BY p.topic, p.rules_version, p.bucket;

-- Per hour and per day, every version: pick one with WHERE rules_version = '…'.
CREATE VIEW topic_hourly_by_version AS SELECT * FROM topic_index_by_version('hour');
CREATE VIEW topic_daily_by_version AS SELECT * FROM topic_index_by_version('day');

-- Per hour and per day under each topic's current rules (rules_version says which).
CREATE VIEW topic_hourly AS
SELECT t.* FROM topic_hourly_by_version AS t
JOIN rule_versions AS v USING (topic, rules_version)
WHERE v.is_current;

CREATE VIEW topic_daily AS
SELECT t.* FROM topic_daily_by_version AS t
JOIN rule_versions AS v USING (topic, rules_version)
WHERE v.is_current;
