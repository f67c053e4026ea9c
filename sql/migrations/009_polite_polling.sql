-- 009: polite, adaptive polling (polling.py; README "Polling"). Each feed keeps when it is next
-- due and why: its interval, its <ttl> or Cache-Control max-age, a backoff after failures, a
-- Retry-After, or never again (410 Gone: retired until its address changes in config.yaml);
-- where a permanent redirect took it; and the <ttl> it last sent. Every cycle still writes one
-- `fetches` row per feed, asked or not (outcome `not_due`, `waiting`, `retired`), and counts
-- the feeds it did not ask in `runs`.

ALTER TABLE feeds ADD COLUMN next_due_at TIMESTAMPTZ;  -- NULL: due now (or retired)
ALTER TABLE feeds ADD COLUMN due_reason VARCHAR;       -- why it is due then
ALTER TABLE feeds ADD COLUMN retired_at TIMESTAMPTZ;   -- when it answered 410 Gone
ALTER TABLE feeds ADD COLUMN moved_to VARCHAR;         -- its new address (secrets as ${NAME})
ALTER TABLE feeds ADD COLUMN ttl_minutes INTEGER;      -- the <ttl> of its last parsed body

ALTER TABLE fetches ADD COLUMN next_due_at TIMESTAMPTZ;  -- the feed's next due time after it
ALTER TABLE fetches ADD COLUMN due_reason VARCHAR;

ALTER TABLE runs ADD COLUMN feeds_not_due INTEGER DEFAULT 0;  -- not asked: not due yet
ALTER TABLE runs ADD COLUMN feeds_waiting INTEGER DEFAULT 0;  -- not asked: backoff, Retry-After
ALTER TABLE runs ADD COLUMN feeds_retired INTEGER DEFAULT 0;  -- not asked: 410 Gone

-- The views over them, first created by 004 (IF EXISTS: a new database gets them only here).
-- feed_health is created again by 010, the last migration that changes it.
DROP VIEW IF EXISTS feed_health;
DROP VIEW IF EXISTS runs_summary;
-- include: views/runs_summary.sql
