-- 007: story_scores and story_events lose their primary keys, so a cycle's memory no longer
-- grows with history.
-- A primary key is an index (an ART) that DuckDB loads in part for every row inserted: its keys
-- are story ids, hashes in no order, so each new row touches another part of it. On 10 million
-- stories a cycle storing 2,400 new stories peaked at 1.6 GB, 0.8 GB of it loading these two
-- indexes, and 50 new stories cost 50 MB. Nothing needs them: the cycle inserts scores and
-- groupings for its new stories only (new by the key of `stories`, which stays), it refuses a
-- batch with the same score twice, and a rescore skips the scores already stored by reading
-- the time range it rescores. Lookups by story id (explain) scan instead: 0.4 s on 10 million.
-- DuckDB cannot drop a primary key, so each table is copied whole (20 s on 10 million stories).

CREATE TABLE story_scores_new (
    story_id      VARCHAR NOT NULL,
    topic         VARCHAR NOT NULL,
    rules_version VARCHAR NOT NULL,
    score         DOUBLE NOT NULL,
    relevant      BOOLEAN NOT NULL,
    matches       JSON NOT NULL,
    scored_at     TIMESTAMPTZ NOT NULL,
    scored        BOOLEAN DEFAULT true,
    threat_points DOUBLE DEFAULT 0,
    act_points    DOUBLE DEFAULT 0,
    event_at      TIMESTAMPTZ
);
INSERT INTO story_scores_new
SELECT story_id, topic, rules_version, score, relevant, matches, scored_at, scored,
       threat_points, act_points, event_at
FROM story_scores;
DROP TABLE story_scores;
ALTER TABLE story_scores_new RENAME TO story_scores;

CREATE TABLE story_events_new (
    story_id         VARCHAR NOT NULL,
    event_id         VARCHAR NOT NULL,
    similarity       DOUBLE,
    grouped_at       TIMESTAMPTZ NOT NULL,
    event_at         TIMESTAMPTZ,
    event_started_at TIMESTAMPTZ,
    title_words      VARCHAR[]
);
INSERT INTO story_events_new
SELECT story_id, event_id, similarity, grouped_at, event_at, event_started_at, title_words
FROM story_events;
DROP TABLE story_events;
ALTER TABLE story_events_new RENAME TO story_events;
