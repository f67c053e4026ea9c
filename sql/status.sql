-- What `tensionwatch status` shows (status.py), each statement by name. Every one reads
-- little: the latest runs, the feeds needing attention, the outbox's open deliveries.

-- name: latest_runs
-- The last $n cycles, newest first.
SELECT run_id, started_at, stored_at, duration_s, wait_to_store_s, feeds_total, feeds_ok,
       feeds_unchanged, feeds_failed, feeds_not_due, feeds_waiting, feeds_retired, stories_new
FROM runs_summary ORDER BY started_at DESC LIMIT $n;

-- name: latest_runs_before_009
-- The same from a database a cycle of this version has not migrated yet.
SELECT run_id, started_at, stored_at, duration_s, wait_to_store_s, feeds_total, feeds_ok,
       feeds_unchanged, feeds_failed, NULL AS feeds_not_due, NULL AS feeds_waiting,
       NULL AS feeds_retired, stories_new
FROM runs_summary ORDER BY started_at DESC LIMIT $n;

-- name: latest_fetches
-- What each feed did in the latest cycle: does the network look down?
SELECT outcome, error FROM fetches
WHERE run_id = (SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1);

-- name: feeds_needing_attention
-- Configured feeds that are retired, failing, told to wait, unreachable with the network, or
-- moved: when each is asked next and why. Retired first, then by failures.
SELECT feed_id, url, consecutive_failures, next_due_at, due_reason, retired_at, moved_to,
       last_ok_at, last_error
FROM feed_health
WHERE list_contains($feed_id, feed_id)
  AND (retired_at IS NOT NULL OR consecutive_failures > 0 OR moved_to IS NOT NULL
       OR due_reason IN ('retry-after', 'network down'))
ORDER BY retired_at IS NOT NULL DESC, consecutive_failures DESC, feed_id;

-- name: open_deliveries
-- Alert deliveries not sent yet (still due, or being sent), oldest first.
SELECT a.detected_at, a.kind, a.topic, a.title, d.destination, d.state, d.attempts,
       d.next_attempt_at, d.last_error
FROM alert_deliveries AS d JOIN alerts AS a USING (alert_id)
WHERE d.state IN ('pending', 'sending')
ORDER BY a.detected_at, d.alert_id, d.destination;

-- name: rule_versions
-- Each topic's current rules version, and whether its history still waits for a rescore.
SELECT topic, rules_version, first_used_at, coalesce(history_stale, false) AS history_stale
FROM rule_versions WHERE is_current ORDER BY topic;

-- name: schema_version
SELECT coalesce(max(version), 0) FROM schema_migrations;
