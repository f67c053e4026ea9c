-- topic_index_by_version(unit): one row per topic, rules version and time bucket (unit 'hour'
-- or 'day'; bucket = its start, a UTC TIMESTAMPTZ), from the topic's first stored story to now.
-- A bucket with no stories is a row of zeros, not a gap, so charts and z-scores see the zeros.
--
-- Stories fall in buckets by event_at (published, when sane). Coverage comes from the fetches
-- made in the bucket, of the feeds in the topic's languages: a bucket nobody polled (before
-- monitoring began, or an outage) has coverage NULL and poor_coverage true: not calm, unknown.
-- share counts tension, not mentions: relevant stories with a positive score over every story
-- the topic's rules could read (a ceasefire story is relevant with a negative score and does
-- not raise it). index scales share so that the base period (settings index_base_from /
-- index_base_until, default all history) averages 100, as the GPR index does.
CREATE MACRO topic_index_by_version(unit) AS TABLE
WITH topics AS (
    SELECT topic, rules_version,
           CAST(rules -> '$.languages' AS VARCHAR[]) AS languages   -- NULL: every language
    FROM rule_versions
),
scored AS (
    SELECT sc.topic, sc.rules_version,
           date_trunc(unit, s.event_at AT TIME ZONE 'UTC') AS bucket,
           sc.relevant, sc.scored, sc.score, sc.threat_points, sc.act_points,
           coalesce(e.event_id, s.story_id) AS event_id,
           coalesce(f.outlet, s.feed_id) AS outlet
    FROM story_scores AS sc
    JOIN stories AS s USING (story_id)
    LEFT JOIN story_events AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
),
per_bucket AS (
    SELECT topic, rules_version, bucket,
           count(*) FILTER (WHERE relevant)                          AS relevant_stories,
           count(*) FILTER (WHERE relevant AND score > 0)            AS tension_stories,
           count(DISTINCT event_id) FILTER (WHERE relevant)          AS events,
           count(*) FILTER (WHERE scored)                            AS all_stories,
           count(*) FILTER (WHERE NOT scored)                        AS unscored_stories,
           coalesce(sum(score) FILTER (WHERE relevant), 0)           AS score_sum,
           avg(score) FILTER (WHERE relevant)                        AS score_mean,
           coalesce(sum(threat_points) FILTER (WHERE relevant), 0)   AS threat_sum,
           coalesce(sum(act_points) FILTER (WHERE relevant), 0)      AS act_sum,
           count(DISTINCT outlet) FILTER (WHERE relevant)            AS outlets
    FROM scored
    GROUP BY ALL
),
spans AS (
    SELECT topic, rules_version, min(bucket) AS first_bucket FROM per_bucket GROUP BY ALL
),
buckets AS (
    SELECT topic, rules_version, unnest(generate_series(
               first_bucket, date_trunc(unit, now() AT TIME ZONE 'UTC'),
               CAST('1 ' || unit AS INTERVAL))) AS bucket
    FROM spans
),
polling AS (
    SELECT t.topic, t.rules_version,
           date_trunc(unit, x.started_at AT TIME ZONE 'UTC') AS bucket,
           count(DISTINCT x.feed_id) FILTER (WHERE x.outcome <> 'error') AS feeds_answered,
           count(DISTINCT x.feed_id)                                     AS feeds_polled
    FROM fetches AS x
    JOIN feeds AS f USING (feed_id)
    JOIN topics AS t ON t.languages IS NULL OR list_contains(t.languages, f.language)
    GROUP BY ALL
),
joined AS (
    SELECT b.topic, b.rules_version, b.bucket,
           coalesce(p.relevant_stories, 0)  AS relevant_stories,
           coalesce(p.tension_stories, 0)   AS tension_stories,
           coalesce(p.events, 0)            AS events,
           coalesce(p.all_stories, 0)       AS all_stories,
           coalesce(p.unscored_stories, 0)  AS unscored_stories,
           coalesce(p.tension_stories, 0) / nullif(p.all_stories, 0) AS share,
           coalesce(p.score_sum, 0)         AS score_sum,
           p.score_mean,
           coalesce(p.threat_sum, 0)        AS threat_sum,
           coalesce(p.act_sum, 0)           AS act_sum,
           coalesce(p.outlets, 0)           AS outlets,
           coalesce(q.feeds_answered, 0)    AS feeds_answered,
           coalesce(q.feeds_polled, 0)      AS feeds_polled,
           q.feeds_answered / nullif(q.feeds_polled, 0) AS coverage
    FROM buckets AS b
    LEFT JOIN per_bucket AS p USING (topic, rules_version, bucket)
    LEFT JOIN polling AS q USING (topic, rules_version, bucket)
),
base AS (
    SELECT topic, rules_version, avg(share) AS base_share
    FROM joined
    WHERE share IS NOT NULL
      AND bucket >= coalesce((SELECT CAST(value AS DATE) FROM settings
                              WHERE key = 'index_base_from'), DATE '1970-01-01')
      AND bucket < coalesce((SELECT CAST(value AS DATE) FROM settings
                             WHERE key = 'index_base_until') + 1, DATE '9999-01-01')
    GROUP BY ALL
)
SELECT j.topic, j.rules_version, j.bucket AT TIME ZONE 'UTC' AS bucket,
       j.relevant_stories, j.tension_stories, j.events, j.all_stories, j.unscored_stories,
       j.share, 100 * j.share / nullif(base.base_share, 0) AS "index",
       j.score_sum, j.score_mean, j.threat_sum, j.act_sum, j.outlets,
       j.feeds_answered, j.feeds_polled, j.coverage,
       coalesce(j.coverage < coalesce((SELECT CAST(value AS DOUBLE) FROM settings
                                       WHERE key = 'poor_coverage'), 0.5), true) AS poor_coverage
FROM joined AS j
LEFT JOIN base USING (topic, rules_version)
ORDER BY j.topic, j.rules_version, j.bucket;
