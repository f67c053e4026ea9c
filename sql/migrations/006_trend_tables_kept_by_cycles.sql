-- 006: the trend views read small tables that each cycle keeps up to date, not every story,
-- and a cycle's own work no longer grows with the history.
-- On 10 million stories, topic_daily took 10 s because it grouped every stored score; now each
-- cycle recomputes only the buckets its new stories and fetches fall in (and the top stories of
-- the days whose events they join), `tensionwatch rescore` rebuilds what it rescored, and the
-- views zero-fill and index those tables. Every figure in them is recomputed from the stories
-- of its bucket, never added up across cycles: events and outlets are distinct counts.
-- store.migrate fills the tables from the stored history right after this file runs.

-- Each score keeps its story's event_at, so a cycle reads the scores of a bucket by time range
-- (DuckDB skips the row groups outside it) instead of joining every score to its story.
ALTER TABLE story_scores ADD COLUMN event_at TIMESTAMPTZ;
UPDATE story_scores SET event_at = s.event_at FROM stories AS s
WHERE s.story_id = story_scores.story_id;

-- When an event began (its first story's event_at): the days whose top stories can change
-- when a copy joins the event. title_words: the words grouping compares (events.title_words),
-- kept so a cycle does not fold every headline of its window again; NULL for stories grouped
-- before 006, whose headlines are folded as before.
ALTER TABLE story_events ADD COLUMN event_started_at TIMESTAMPTZ;
ALTER TABLE story_events ADD COLUMN title_words VARCHAR[];
UPDATE story_events SET event_started_at = s.event_at FROM stories AS s
WHERE s.story_id = story_events.event_id;

-- The stories each feed carried in its last body stored: a cycle looks up in `stories` (which
-- means reading every stored id) only the ids a feed did not carry last time.
ALTER TABLE feeds ADD COLUMN recent_story_ids VARCHAR[];

-- One row per topic, rules version, bucket width ('hour' or 'day') and bucket that holds stories.
CREATE TABLE topic_buckets (
    topic            VARCHAR NOT NULL,
    rules_version    VARCHAR NOT NULL,
    width            VARCHAR NOT NULL,
    bucket           TIMESTAMPTZ NOT NULL,
    relevant_stories BIGINT NOT NULL,
    tension_stories  BIGINT NOT NULL,
    events           BIGINT NOT NULL,
    all_stories      BIGINT NOT NULL,
    unscored_stories BIGINT NOT NULL,
    score_sum        DOUBLE NOT NULL,
    score_mean       DOUBLE,
    threat_sum       DOUBLE NOT NULL,
    act_sum          DOUBLE NOT NULL,
    outlets          BIGINT NOT NULL
);

-- One row per bucket width, bucket and feed language in which feeds were polled.
CREATE TABLE polling_buckets (
    width          VARCHAR NOT NULL,
    bucket         TIMESTAMPTZ NOT NULL,
    language       VARCHAR NOT NULL,
    feeds_answered BIGINT NOT NULL,
    feeds_polled   BIGINT NOT NULL
);

-- The ten highest-scoring relevant stories per topic, rules version and UTC day.
CREATE TABLE top_story_ranks (
    topic         VARCHAR NOT NULL,
    rules_version VARCHAR NOT NULL,
    day           DATE NOT NULL,
    rank          BIGINT NOT NULL,
    score         DOUBLE NOT NULL,
    title         VARCHAR,
    outlet        VARCHAR,
    url           VARCHAR,
    event_at      TIMESTAMPTZ NOT NULL,
    story_id      VARCHAR NOT NULL,
    event_id      VARCHAR NOT NULL,
    event_outlets BIGINT NOT NULL,
    terms         VARCHAR[]
);

DROP VIEW IF EXISTS topic_trend;
DROP VIEW IF EXISTS top_stories;
DROP VIEW IF EXISTS topic_hourly;
DROP VIEW IF EXISTS topic_daily;
DROP VIEW IF EXISTS topic_hourly_by_version;
DROP VIEW IF EXISTS topic_daily_by_version;
DROP MACRO TABLE IF EXISTS topic_index_by_version;

-- include: views/topic_index.sql
-- include: views/topic_hourly.sql
-- include: views/topic_daily.sql
-- include: views/topic_trend.sql
-- include: views/top_stories.sql
