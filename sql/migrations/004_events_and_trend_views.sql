-- 004: events (copies of one story grouped), outlets, threat / act points, index settings, and
-- the trend views, each in its own file under sql/views (included below by store.migrate).

-- Who publishes a feed: two feeds of one outlet are one outlet in the index.
ALTER TABLE feeds ADD COLUMN outlet VARCHAR;

-- The points a relevant story's threat-class and act-class signals earned (the GPR split;
-- before the commentary factor, counters apart). 0 for a story that is not relevant.
ALTER TABLE story_scores ADD COLUMN threat_points DOUBLE DEFAULT 0;
ALTER TABLE story_scores ADD COLUMN act_points DOUBLE DEFAULT 0;
UPDATE story_scores SET
    threat_points = CASE WHEN relevant THEN coalesce(list_sum(
        [CAST(x ->> 'points' AS DOUBLE) FOR x IN CAST(matches -> '$.signals' AS JSON[])
         IF x ->> 'class' = 'threat' AND x ->> 'role' = 'signal']), 0) ELSE 0 END,
    act_points = CASE WHEN relevant THEN coalesce(list_sum(
        [CAST(x ->> 'points' AS DOUBLE) FOR x IN CAST(matches -> '$.signals' AS JSON[])
         IF x ->> 'class' = 'act' AND x ->> 'role' = 'signal']), 0) ELSE 0 END;

-- One row per story grouped into an event: the event's id is the story id of its first story.
-- A story without a row (stored before 004) is an event of its own.
CREATE TABLE story_events (
    story_id   VARCHAR PRIMARY KEY,
    event_id   VARCHAR NOT NULL,
    similarity DOUBLE,                  -- to the copy it joined; NULL for an event's first story
    grouped_at TIMESTAMPTZ NOT NULL
);

-- Settings the views read, written from config.yaml by every cycle (index base, coverage).
CREATE TABLE settings (key VARCHAR PRIMARY KEY, value VARCHAR);

DROP VIEW topic_hourly;
DROP VIEW topic_daily;
DROP VIEW topic_hourly_by_version;
DROP VIEW topic_daily_by_version;
DROP MACRO TABLE topic_index_by_version;

-- The topic index views are created by 006, which reads the tables it adds: a view file is
-- included only by the last migration that changes it, so the text of every earlier
-- migration still runs on a new database. feed_health and runs_summary, created here first,
-- are created by 009 and 010 now.
