-- Spike alerts (alerting.py, detect.py). Every table is read by time range only.

-- name: windows
-- One row per topic (its current rules), window width ($hours: each divides a day; windows
-- start at UTC midnight) and complete window in [$since, $until) that holds stories or was
-- polled: the figures detect.py judges. A window polled with no story is a row of zeros; a
-- window nobody polled has coverage NULL (unknown, never calm).
-- With $known_within_seconds, a story counts in a window only if it was first seen at most
-- that long after the window closed: each window reads as it stood when it was judged, so
-- stories backfilled later (a feed added with its archive) change no window's figures.
WITH widths AS (SELECT unnest($hours) AS hours),
topics AS (
    -- A version whose older history is not rescored yet (history_stale) has no figures
    -- before it was first used: those windows read as unknown, not calm.
    SELECT topic, rules_version, CAST(rules -> '$.languages' AS VARCHAR[]) AS languages,
           CASE WHEN history_stale THEN first_used_at END AS known_from
    FROM rule_versions WHERE is_current
),
scored AS (
    SELECT sc.topic, sc.event_at, sc.relevant AND sc.score > 0 AS tension, sc.relevant,
           sc.scored, sc.score, s.first_seen_at, coalesce(e.event_id, sc.story_id) AS event_id,
           coalesce(f.outlet, s.feed_id) AS outlet
    FROM (SELECT story_id, topic, rules_version, event_at, relevant, scored, score
          FROM story_scores WHERE event_at >= $since AND event_at < $until) AS sc
    JOIN topics USING (topic, rules_version)
    JOIN (SELECT story_id, feed_id, first_seen_at FROM stories
          WHERE event_at >= $since AND event_at < $until) AS s USING (story_id)
    LEFT JOIN (SELECT story_id, event_id FROM story_events
               WHERE event_at >= $since AND event_at < $until) AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
),
figures AS (
    SELECT topic, hours,
           time_bucket(to_hours(hours), event_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS start,
           count(*) FILTER (WHERE tension)                  AS tension_stories,
           count(*) FILTER (WHERE scored)                   AS all_stories,
           count(DISTINCT event_id) FILTER (WHERE tension)  AS events,
           coalesce(sum(score) FILTER (WHERE relevant), 0)  AS score_sum,
           count(DISTINCT outlet) FILTER (WHERE tension)    AS outlets
    FROM scored CROSS JOIN widths
    WHERE $known_within_seconds IS NULL
       OR first_seen_at <= time_bucket(to_hours(hours), event_at,
                                       TIMESTAMPTZ '2000-01-01 00:00:00+00')
                           + to_hours(hours) + to_seconds($known_within_seconds)
    GROUP BY ALL
),
polled AS (
    -- Feeds of the topic's languages (a topic without `languages` reads every feed).
    SELECT t.topic, w.hours,
           time_bucket(to_hours(w.hours), x.started_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
               AS start,
           -- answered as store.sql's insert_polling_buckets counts it (not_due: still current)
           count(DISTINCT x.feed_id)
               FILTER (WHERE x.outcome IN ('ok', 'not_modified', 'unchanged', 'not_due'))
               AS answered,
           count(DISTINCT x.feed_id)                                     AS polled
    FROM (SELECT feed_id, started_at, outcome FROM fetches
          WHERE started_at >= $since AND started_at < $until) AS x
    JOIN feeds AS f USING (feed_id)
    JOIN topics AS t ON t.languages IS NULL OR list_contains(t.languages, f.language)
    CROSS JOIN widths AS w
    GROUP BY ALL
)
SELECT topic, hours, start, start + to_hours(hours) AS end_,
       coalesce(tension_stories, 0), coalesce(all_stories, 0), coalesce(events, 0),
       coalesce(score_sum, 0), coalesce(outlets, 0),
       CASE WHEN start >= coalesce(t.known_from, start) THEN answered / nullif(polled, 0) END
           AS coverage
FROM figures FULL JOIN polled USING (topic, hours, start)
JOIN topics AS t USING (topic)
WHERE start >= $since AND start + to_hours(hours) <= $until
ORDER BY end_, hours, topic;

-- name: top_events
-- The highest-scoring events of topic $topic's tension stories in [$start, $end): per event its
-- best story (title, link, score, the signal terms that earned points) and how many outlets
-- carried it in the window.
WITH tension AS (
    SELECT sc.story_id, sc.score, coalesce(e.event_id, sc.story_id) AS event_id,
           s.title, s.url, s.event_at, coalesce(f.outlet, s.feed_id) AS outlet,
           [x ->> 'term' FOR x IN CAST(sc.matches -> '$.signals' AS JSON[])
            IF CAST(x ->> 'points' AS DOUBLE) <> 0] AS terms
    FROM (SELECT story_id, score, matches FROM story_scores
          WHERE topic = $topic AND relevant AND score > 0
            AND event_at >= $start AND event_at < $end
            AND rules_version = (SELECT rules_version FROM rule_versions
                                 WHERE topic = $topic AND is_current)) AS sc
    JOIN (SELECT story_id, feed_id, title, url, event_at FROM stories
          WHERE event_at >= $start AND event_at < $end) AS s USING (story_id)
    LEFT JOIN (SELECT story_id, event_id FROM story_events
               WHERE event_at >= $start AND event_at < $end) AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
)
SELECT arg_max(title, (score, event_at)) AS title, count(DISTINCT outlet) AS outlets,
       arg_max(url, (score, event_at)) AS url, max(score) AS score,
       arg_max(terms, (score, event_at)) AS terms
FROM tension
GROUP BY event_id
ORDER BY score DESC, outlets DESC, title
LIMIT $limit;

-- Alert lifecycle (migration 008): states between cycles, the outbox and its deliveries.

-- name: load_states
SELECT topic, severity, elevated_since, last_alert_at, last_hot_at, judged_until
FROM alert_states;

-- name: save_state
INSERT INTO alert_states (topic, severity, elevated_since, last_alert_at, last_hot_at,
                          judged_until, updated_at)
VALUES ($topic, $severity, $elevated_since, $last_alert_at, $last_hot_at, $judged_until, $now)
ON CONFLICT (topic) DO UPDATE SET
    severity = excluded.severity, elevated_since = excluded.elevated_since,
    last_alert_at = excluded.last_alert_at, last_hot_at = excluded.last_hot_at,
    judged_until = excluded.judged_until, updated_at = excluded.updated_at;

-- name: insert_alert
-- An alert already recorded (the same window judged again after a crash) is left as it is.
INSERT INTO alerts (alert_id, kind, topic, window_start, window_end, window_hours, metric,
                    severity, z, value, baseline_median, baseline_windows, why, title,
                    body_text, body_markdown, top_events, detected_at, run_id)
VALUES ($alert_id, $kind, $topic, $window_start, $window_end, $window_hours, $metric,
        $severity, $z, $value, $baseline_median, $baseline_windows, $why, $title,
        $body_text, $body_markdown, $top_events, $now, $run_id)
ON CONFLICT (alert_id) DO NOTHING;

-- name: insert_deliveries
INSERT INTO alert_deliveries (alert_id, destination, state, attempts, next_attempt_at)
SELECT $alert_id, unnest($destination), 'pending', 0, $now
ON CONFLICT (alert_id, destination) DO NOTHING;

-- name: interrupted_sends
-- Deliveries left 'sending' by a process that stopped mid-send: the message may have left, so
-- it is not sent again (at most once per destination).
UPDATE alert_deliveries
SET state = 'interrupted',
    last_error = 'the process stopped while sending; not sent again, it may not have arrived'
WHERE state = 'sending'
RETURNING alert_id, destination;

-- name: due_deliveries
-- Pending deliveries to destinations still in config.yaml whose time has come, oldest first.
SELECT d.alert_id, d.destination, d.attempts, a.title, a.body_text, a.body_markdown,
       a.detected_at
FROM alert_deliveries AS d JOIN alerts AS a USING (alert_id)
WHERE d.state = 'pending' AND d.next_attempt_at <= $now
  AND list_contains($destinations, d.destination)
ORDER BY a.detected_at, d.alert_id, d.destination;

-- name: mark_sending
UPDATE alert_deliveries
SET state = 'sending', attempts = attempts + 1, last_attempt_at = $now
WHERE alert_id = $alert_id AND destination = $destination AND state = 'pending';

-- name: mark_sent
UPDATE alert_deliveries SET state = 'sent', sent_at = $now, last_error = NULL
WHERE alert_id = $alert_id AND destination = $destination;

-- name: mark_unsent
-- $state 'pending' (tried again at $next_attempt_at) or 'failed' (given up).
UPDATE alert_deliveries
SET state = $state, last_error = $error, next_attempt_at = $next_attempt_at
WHERE alert_id = $alert_id AND destination = $destination;

-- name: update_alert_states
-- Each alert's state from its deliveries (alerts without any stay 'detected').
UPDATE alerts SET state = d.state
FROM (
    SELECT alert_id,
           CASE WHEN bool_or(state IN ('pending', 'sending')) THEN 'pending'
                WHEN bool_and(state = 'sent') THEN 'sent'
                ELSE 'failed' END AS state
    FROM alert_deliveries WHERE list_contains($alert_id, alert_id) GROUP BY alert_id
) AS d
WHERE alerts.alert_id = d.alert_id AND alerts.state <> d.state;

-- name: recent_alerts
-- Alerts detected since $since, newest first, each with its deliveries.
SELECT a.alert_id, a.kind, a.topic, a.window_start, a.window_end, a.window_hours, a.severity,
       a.z, a.value, a.baseline_median, a.why, a.detected_at, a.state,
       list({'destination': d.destination, 'state': d.state, 'attempts': d.attempts,
             'last_error': d.last_error, 'sent_at': d.sent_at}
            ORDER BY d.destination) FILTER (WHERE d.destination IS NOT NULL) AS deliveries
FROM alerts AS a LEFT JOIN alert_deliveries AS d USING (alert_id)
WHERE a.detected_at >= $since
GROUP BY ALL
ORDER BY a.detected_at DESC, a.alert_id;

-- name: kept_windows
-- The windows the detector read before, [$since, $until), as they stood then, under each
-- topic's current rules (after a change of rules they are read again).
SELECT w.topic, w.window_hours, w.window_start, w.window_end, w.tension_stories,
       w.all_stories, w.events, w.score_sum, w.outlets, w.coverage
FROM alert_windows AS w
JOIN rule_versions AS v ON v.topic = w.topic AND v.rules_version = w.rules_version AND v.is_current
WHERE w.window_start >= $since AND w.window_end <= $until
ORDER BY w.window_end, w.window_hours, w.topic;

-- name: keep_windows
INSERT INTO alert_windows
SELECT n.topic, v.rules_version, n.window_start,
       (epoch(n.window_end) - epoch(n.window_start)) / 3600, n.window_end,
       n.tension_stories, n.all_stories, n.events, n.score_sum, n.outlets, n.coverage, n.now
FROM (SELECT unnest($topic) AS topic, unnest($start) AS window_start,
             unnest($end) AS window_end, unnest($tension_stories) AS tension_stories,
             unnest($all_stories) AS all_stories, unnest($events) AS events,
             unnest($score_sum) AS score_sum, unnest($outlets) AS outlets,
             unnest($coverage) AS coverage, unnest($now) AS now) AS n
JOIN rule_versions AS v ON v.topic = n.topic AND v.is_current
ON CONFLICT DO NOTHING;

-- name: forget_removed_destinations
-- Deliveries still due to a destination no longer in config.yaml: given up, and said so.
UPDATE alert_deliveries
SET state = 'failed', last_error = 'the destination is no longer in config.yaml'
WHERE state = 'pending' AND NOT list_contains($destinations, destination)
RETURNING alert_id, destination;

-- name: latest_runs
-- The last $n stored cycles, newest first: is the pipeline blind? Feeds not answering are those
-- that failed, and those not asked because they back off, were told to wait or are retired.
SELECT feeds_failed + coalesce(feeds_waiting, 0) + coalesce(feeds_retired, 0), feeds_total,
       started_at
FROM runs ORDER BY started_at DESC LIMIT $n;

-- name: retired_feeds
-- Feeds retired after 410 Gone (migration 009) among $feed_id: each raises one health alert.
SELECT feed_id, url, retired_at FROM feeds
WHERE retired_at IS NOT NULL AND list_contains($feed_id, feed_id)
ORDER BY feed_id;

-- name: alerts_known
SELECT alert_id FROM alerts WHERE list_contains($alert_id, alert_id);

-- name: last_stored_at
-- When the last cycle was stored: has the pipeline stalled?
SELECT max(stored_at) FROM runs;
