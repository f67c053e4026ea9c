-- topic_index_by_version(unit): one row per topic, rules version and time bucket (unit 'hour'
-- or 'day'; bucket = its start, a UTC TIMESTAMPTZ), from the topic's first stored story to now.
-- A bucket with no stories is a row of zeros, not a gap, so charts and z-scores see the zeros.
--
-- The figures of each bucket come from topic_buckets and polling_buckets, which every cycle
-- keeps up to date for the buckets it touches (store.sql, "Trend tables"); this view adds the
-- empty buckets, coverage per topic and the index, so it reads thousands of rows, not every story.
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
per_bucket AS (
    SELECT * EXCLUDE (width, bucket), bucket AT TIME ZONE 'UTC' AS bucket
    FROM topic_buckets WHERE width = unit
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
    -- A feed has one language, so the feeds of a topic's languages add up across languages.
    SELECT t.topic, t.rules_version, p.bucket AT TIME ZONE 'UTC' AS bucket,
           CAST(sum(p.feeds_answered) AS BIGINT) AS feeds_answered,
           CAST(sum(p.feeds_polled) AS BIGINT)   AS feeds_polled
    FROM polling_buckets AS p
    JOIN topics AS t ON t.languages IS NULL OR list_contains(t.languages, p.language)
    WHERE p.width = unit
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
