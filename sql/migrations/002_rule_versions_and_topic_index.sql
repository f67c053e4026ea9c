-- 002: rule versions, and the topic index per hour and per day.
-- Every score carries the version (hash) of the rules that produced it. A trend must use one
-- version at a time, so the views below group by version, and topic_hourly / topic_daily
-- show each topic's *current* version only (the one config.yaml holds now).

-- One row per topic per rules version ever used; is_current marks config.yaml's version.
CREATE TABLE rule_versions (
    topic         VARCHAR NOT NULL,
    rules_version VARCHAR NOT NULL,
    rules         JSON,                       -- the topic's rules as configured (NULL: not recorded)
    first_used_at TIMESTAMPTZ NOT NULL,
    is_current    BOOLEAN NOT NULL,
    PRIMARY KEY (topic, rules_version)
);

-- Versions already in story_scores, from before versions were recorded: their rules are lost.
INSERT INTO rule_versions
SELECT topic, rules_version, NULL, min(scored_at), false FROM story_scores GROUP BY ALL;

-- The topic index per time bucket (unit: 'hour' or 'day'; bucket = its start in UTC), for every
-- rules version.
-- share is GPR-style: relevant stories over all stories scored in the bucket, so a busy news
-- day does not read as a tense one; outlets counts distinct feeds among relevant stories, so
-- one outlet repeating itself does not read as a spike; coverage is the share of polled feeds
-- that answered in the bucket, so a dead feed does not read as calm.
CREATE MACRO topic_index_by_version(unit) AS TABLE
WITH scored AS (
    SELECT sc.topic, sc.rules_version, date_trunc(unit, s.event_at AT TIME ZONE 'UTC') AS bucket,
           sc.relevant, sc.score, s.feed_id
    FROM story_scores AS sc
    JOIN stories AS s USING (story_id)
),
per_bucket AS (
    SELECT topic, rules_version, bucket,
           count(*) FILTER (WHERE relevant)                 AS relevant_stories,
           count(*)                                         AS all_stories,
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
       p.relevant_stories, p.all_stories,
       p.relevant_stories / p.all_stories AS share,
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
