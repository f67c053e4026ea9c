-- 010: retention (retention.py). The prune step removes, after config.yaml's `retention`,
-- a story's summary (it becomes NULL) and the fetch logs; what it removed and up to when is
-- recorded in `prunes`, so the scheduled prune runs once a period and the trend tables are
-- never recomputed from the fetches left after a prune (store.refresh_trend_tables). And
-- `fetches` loses its key index, most of a database's size.

ALTER TABLE stories ALTER COLUMN summary DROP NOT NULL;

-- One row per prune: when, up to when, and how much it removed.
CREATE TABLE prunes (
    pruned_at            TIMESTAMPTZ NOT NULL,
    story_text_before    TIMESTAMPTZ,          -- NULL: story text kept for good
    fetch_logs_before    TIMESTAMPTZ,          -- NULL: fetch logs kept for good
    summaries_removed    BIGINT NOT NULL,
    title_words_removed  BIGINT NOT NULL,
    fetches_removed      BIGINT NOT NULL
);

-- fetches loses its primary key. The key's index held a random UUID per fetch: on 419 days of
-- fetch logs (13.4 million rows: 334 feeds every 15 minutes) it took 1.1 GB, more than twice
-- the table itself (0.46 GB), and 2.2 GB when written in batches as cycles write; deleting a
-- prune's rows from it took 70-90 s and 1.9 GB of memory, against 0.3 s without it
-- (bench/size.py, bench/RESULTS.md). Nothing looks a fetch up by its id: a
-- batch stored twice after a crash is skipped whole (store.sql, run_is_stored). DuckDB cannot
-- drop a key, so the table is copied; a column count that differs fails here, loudly.
CREATE TABLE fetches_new (
    fetch_id     VARCHAR NOT NULL,
    run_id       VARCHAR NOT NULL,
    feed_id      VARCHAR NOT NULL,
    url          VARCHAR NOT NULL,
    final_url    VARCHAR,
    started_at   TIMESTAMPTZ NOT NULL,
    duration_ms  INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    outcome      VARCHAR NOT NULL,
    status_code  INTEGER,
    bytes        BIGINT NOT NULL,
    entries_seen INTEGER NOT NULL,
    entries_new  INTEGER NOT NULL,
    error        VARCHAR,
    warning      VARCHAR,
    next_due_at  TIMESTAMPTZ,                -- 009: when the feed is next asked, and why
    due_reason   VARCHAR
);
INSERT INTO fetches_new SELECT * FROM fetches;
DROP TABLE fetches;
ALTER TABLE fetches_new RENAME TO fetches;

-- feed_health counts stories per day over the days whose fetch logs are kept.
DROP VIEW IF EXISTS feed_health;
-- include: views/feed_health.sql
