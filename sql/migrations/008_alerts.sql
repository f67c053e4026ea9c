-- 008: spike and health alerts, kept in the database as a durable outbox (README "Alerts").
-- An alert is recorded once per (topic, window, metric, kind), with a row per destination it
-- goes to; a delivery is marked 'sending' and committed before the message leaves, so a
-- process killed mid-send never sends it a second time.

-- One row per alert: a spike of a topic in a window, or a health alert about the pipeline.
CREATE TABLE alerts (
    alert_id         VARCHAR PRIMARY KEY,  -- kind/topic/metric/window start/hours: the dedupe key
    kind             VARCHAR NOT NULL,     -- 'spike', 'health' or 'health_cleared'
    topic            VARCHAR NOT NULL,     -- the topic; '' for a health alert
    window_start     TIMESTAMPTZ,
    window_end       TIMESTAMPTZ,
    window_hours     DOUBLE,
    metric           VARCHAR,
    severity         VARCHAR,              -- 'elevated', 'high', 'critical'; NULL for health
    z                DOUBLE,
    value            DOUBLE,
    baseline_median  DOUBLE,
    baseline_windows INTEGER,
    why              VARCHAR NOT NULL,     -- 'new spike', 'severity rose', or the health reason
    title            VARCHAR NOT NULL,     -- the message's title
    body_text        VARCHAR NOT NULL,     -- the message as plain text
    body_markdown    VARCHAR NOT NULL,     -- the message as Markdown, story text escaped
    top_events       JSON,                 -- title, outlets, url, score, terms of up to 5 events
    detected_at      TIMESTAMPTZ NOT NULL,
    run_id           VARCHAR,              -- the cycle that detected it
    -- 'detected' (no destination), 'pending' (a delivery is still due), 'sent' (to every
    -- destination), 'failed' (a delivery failed for good or was interrupted); from its
    -- deliveries, updated with them
    state            VARCHAR NOT NULL DEFAULT 'detected'
);

-- One row per alert and destination (by the destination's name in config.yaml, never its URL).
CREATE TABLE alert_deliveries (
    alert_id        VARCHAR NOT NULL,
    destination     VARCHAR NOT NULL,
    state           VARCHAR NOT NULL,  -- 'pending', 'sending', 'sent', 'failed', 'interrupted'
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      VARCHAR,
    last_attempt_at TIMESTAMPTZ,
    next_attempt_at TIMESTAMPTZ,
    sent_at         TIMESTAMPTZ,
    PRIMARY KEY (alert_id, destination)
);

-- Where each topic's detector stands between cycles (detect.TopicState), and the end of the
-- last window it judged; topic '' holds the pipeline's health.
CREATE TABLE alert_states (
    topic          VARCHAR PRIMARY KEY,
    severity       VARCHAR,
    elevated_since TIMESTAMPTZ,
    last_alert_at  TIMESTAMPTZ,
    last_hot_at    TIMESTAMPTZ,
    judged_until   TIMESTAMPTZ,
    updated_at     TIMESTAMPTZ NOT NULL
);

-- The figures of each window as they stood when the detector first read it (just after it
-- closed): later windows are judged against these, so a cycle computes only the windows that
-- closed since the last one, never its whole baseline again, and stories backfilled later
-- change no baseline. A window nobody polled is kept too, with coverage NULL.
CREATE TABLE alert_windows (
    topic           VARCHAR NOT NULL,
    rules_version   VARCHAR NOT NULL,      -- figures of other rules are not compared with
    window_start    TIMESTAMPTZ NOT NULL,
    window_hours    DOUBLE NOT NULL,
    window_end      TIMESTAMPTZ NOT NULL,
    tension_stories BIGINT NOT NULL,
    all_stories     BIGINT NOT NULL,
    events          BIGINT NOT NULL,
    score_sum       DOUBLE NOT NULL,
    outlets         BIGINT NOT NULL,
    coverage        DOUBLE,
    read_at         TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (topic, rules_version, window_start, window_hours)
);
