-- 001: the core tables of one monitoring cycle: feeds, runs, fetches, stories, story_scores.
-- Every column is documented in README.md ("Tables"). Times are UTC TIMESTAMPTZ.

-- One row per configured feed, with what conditional GET needs between cycles.
CREATE TABLE feeds (
    feed_id              VARCHAR PRIMARY KEY,   -- the feed's name in config.yaml
    url                  VARCHAR NOT NULL,
    language             VARCHAR NOT NULL,
    title                VARCHAR,               -- the feed's own title, from its last good parse
    etag                 VARCHAR,
    last_modified        VARCHAR,
    body_hash            VARCHAR,               -- of the last body fetched; equal body = unchanged
    added_at             TIMESTAMPTZ NOT NULL,
    last_fetched_at      TIMESTAMPTZ,
    last_ok_at           TIMESTAMPTZ,
    consecutive_failures INTEGER NOT NULL DEFAULT 0
);

-- One row per monitoring cycle.
CREATE TABLE runs (
    run_id          VARCHAR PRIMARY KEY,
    started_at      TIMESTAMPTZ NOT NULL,
    finished_at     TIMESTAMPTZ NOT NULL,
    stored_at       TIMESTAMPTZ NOT NULL,     -- later than finished_at if the write had to wait
    feeds_total     INTEGER NOT NULL,
    feeds_ok        INTEGER NOT NULL,         -- answered with a new body that parsed
    feeds_unchanged INTEGER NOT NULL,         -- 304, or the same body as last time
    feeds_failed    INTEGER NOT NULL,
    entries_seen    INTEGER NOT NULL,
    stories_new     INTEGER NOT NULL,
    rules_versions  JSON NOT NULL             -- {topic: rules_version} used by this cycle
);

-- One row per feed per cycle: what happened when we asked.
CREATE TABLE fetches (
    fetch_id     VARCHAR PRIMARY KEY,
    run_id       VARCHAR NOT NULL,
    feed_id      VARCHAR NOT NULL,
    url          VARCHAR NOT NULL,
    final_url    VARCHAR,
    started_at   TIMESTAMPTZ NOT NULL,
    duration_ms  INTEGER NOT NULL,
    attempts     INTEGER NOT NULL,
    outcome      VARCHAR NOT NULL,            -- ok / not_modified / unchanged / error
    status_code  INTEGER,
    bytes        BIGINT NOT NULL,
    entries_seen INTEGER NOT NULL,
    entries_new  INTEGER NOT NULL,
    error        VARCHAR,                     -- why the feed failed (fetch or parse)
    warning      VARCHAR                      -- e.g. entries recovered from a malformed feed
);

-- One row per distinct story, however many feeds carried it.
CREATE TABLE stories (
    story_id      VARCHAR PRIMARY KEY,        -- stable: from guid, else canonical link, else text
    feed_id       VARCHAR NOT NULL,           -- the feed it was first seen in
    run_id        VARCHAR NOT NULL,
    title         VARCHAR NOT NULL,
    summary       VARCHAR NOT NULL,
    url           VARCHAR,
    guid          VARCHAR,
    published_at  TIMESTAMPTZ,                -- as the feed gave it, if it could be parsed
    first_seen_at TIMESTAMPTZ NOT NULL,
    event_at      TIMESTAMPTZ NOT NULL,       -- published_at when sane, else first_seen_at
    language      VARCHAR NOT NULL
);

-- One row per story per topic per rules version.
CREATE TABLE story_scores (
    story_id      VARCHAR NOT NULL,
    topic         VARCHAR NOT NULL,
    rules_version VARCHAR NOT NULL,
    score         DOUBLE NOT NULL,
    relevant      BOOLEAN NOT NULL,
    matches       JSON NOT NULL,              -- which terms matched, how often, with what weight
    scored_at     TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (story_id, topic, rules_version)
);
