-- 010: retention (retention.py). The prune step removes, after config.yaml's `retention`,
-- a story's summary (it becomes NULL) and the fetch logs; what it removed and up to when is
-- recorded in `prunes`, so the scheduled prune runs once a period and the trend tables are
-- never recomputed from the fetches left after a prune (store.refresh_trend_tables).
-- (No 009 here: that number belongs to another change.)

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

-- feed_health counts stories per day over the days whose fetch logs are kept.
DROP VIEW IF EXISTS feed_health;
-- include: views/feed_health.sql
