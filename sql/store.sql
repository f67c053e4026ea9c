-- Statements the monitoring cycle runs against the database (loaded by store.py by name).
-- Lists of values arrive as bound list parameters and are turned into rows with unnest():
-- one statement per table per cycle instead of one per row (row-by-row executemany is
-- hundreds of times slower in DuckDB).

-- name: feed_states
-- What conditional GET needs for each feed: validators and the hash of the last body.
SELECT feed_id, url, etag, last_modified, body_hash FROM feeds;

-- name: upsert_feeds
-- Feeds as configured now. A feed keeps its fetch state when its language changes; a new
-- address drops the validators, which belong to the old one.
INSERT INTO feeds (feed_id, url, language, added_at, outlet)
SELECT unnest($feed_id), unnest($url), unnest($language), $now, unnest($outlet)
ON CONFLICT (feed_id) DO UPDATE SET
    outlet = excluded.outlet,
    etag = CASE WHEN feeds.url = excluded.url THEN feeds.etag END,
    last_modified = CASE WHEN feeds.url = excluded.url THEN feeds.last_modified END,
    body_hash = CASE WHEN feeds.url = excluded.url THEN feeds.body_hash END,
    url = excluded.url,
    language = excluded.language;

-- name: run_is_stored
-- A kept batch replayed after its cycle was stored (killed between COMMIT and clean-up).
SELECT 1 FROM runs WHERE run_id = $run_id;

-- name: known_story_ids
-- Which of the given story ids are already stored.
SELECT story_id FROM stories WHERE story_id IN (SELECT unnest($story_id));

-- name: insert_stories
INSERT INTO stories (story_id, feed_id, run_id, title, summary, url, guid, published_at,
                     first_seen_at, event_at, language)
SELECT unnest($story_id), unnest($feed_id), unnest($run_id), unnest($title), unnest($summary),
       unnest($url), unnest($guid), unnest($published_at), unnest($first_seen_at),
       unnest($event_at), unnest($language);

-- name: upsert_settings
-- What the views read from config.yaml (the index's base period, poor coverage).
INSERT INTO settings (key, value) SELECT unnest($key), unnest($value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: stories_near
-- The stories a cycle's new stories are grouped against: those of the window around them.
-- Both sides are read by time range, so the cost follows the window, not the history.
SELECT s.story_id, s.feed_id, s.title, s.event_at, coalesce(e.event_id, s.story_id)
FROM (SELECT story_id, feed_id, title, event_at FROM stories
      WHERE event_at BETWEEN $since AND $until) AS s
LEFT JOIN (SELECT story_id, event_id FROM story_events
           WHERE event_at BETWEEN $since AND $until) AS e USING (story_id)
WHERE s.story_id NOT IN (SELECT unnest($story_id));

-- name: insert_story_events
INSERT INTO story_events (story_id, event_id, similarity, grouped_at, event_at)
SELECT unnest($story_id), unnest($event_id), unnest($similarity), $now, unnest($event_at)
ON CONFLICT (story_id) DO NOTHING;

-- name: insert_scores
-- ON CONFLICT: scoring is deterministic, so a story's score under one version never changes.
INSERT INTO story_scores (story_id, topic, rules_version, score, relevant, matches, scored_at,
                          scored, threat_points, act_points)
SELECT unnest($story_id), unnest($topic), unnest($rules_version), unnest($score),
       unnest($relevant), unnest($matches)::JSON, unnest($scored_at), unnest($scored),
       unnest($threat_points), unnest($act_points)
ON CONFLICT DO NOTHING;

-- name: insert_fetches
-- ON CONFLICT: a cycle kept in the pending folder may be delivered twice after a crash.
INSERT INTO fetches (fetch_id, run_id, feed_id, url, final_url, started_at, duration_ms,
                     attempts, outcome, status_code, bytes, entries_seen, entries_new, error,
                     warning)
SELECT unnest($fetch_id), unnest($run_id), unnest($feed_id), unnest($url), unnest($final_url),
       unnest($started_at), unnest($duration_ms), unnest($attempts), unnest($outcome),
       unnest($status_code), unnest($bytes), unnest($entries_seen), unnest($entries_new),
       unnest($error), unnest($warning)
ON CONFLICT DO NOTHING;

-- name: update_feed_states
-- After a fetch: new validators on success; on failure they stay and the failure count grows.
-- A fetch of another address than the feed's current one (a batch kept from before the
-- address changed) leaves the feed's state alone.
UPDATE feeds SET
    title = coalesce(s.title, feeds.title),
    etag = CASE WHEN s.failed THEN feeds.etag ELSE s.etag END,
    last_modified = CASE WHEN s.failed THEN feeds.last_modified ELSE s.last_modified END,
    body_hash = CASE WHEN s.failed THEN feeds.body_hash ELSE s.body_hash END,
    last_fetched_at = s.fetched_at,
    last_ok_at = CASE WHEN s.failed THEN feeds.last_ok_at ELSE s.fetched_at END,
    consecutive_failures = CASE WHEN s.failed THEN feeds.consecutive_failures + 1 ELSE 0 END
FROM (
    SELECT unnest($feed_id) AS feed_id, unnest($url) AS url, unnest($title) AS title,
           unnest($etag) AS etag,
           unnest($last_modified) AS last_modified, unnest($body_hash) AS body_hash,
           unnest($fetched_at) AS fetched_at, unnest($failed) AS failed
) AS s
WHERE feeds.feed_id = s.feed_id AND feeds.url = s.url;

-- name: insert_run
INSERT INTO runs (run_id, started_at, finished_at, stored_at, feeds_total, feeds_ok,
                  feeds_unchanged, feeds_failed, entries_seen, stories_new, rules_versions)
VALUES ($run_id, $started_at, $finished_at, $stored_at, $feeds_total, $feeds_ok,
        $feeds_unchanged, $feeds_failed, $entries_seen, $stories_new, $rules_versions)
ON CONFLICT DO NOTHING;

-- name: story_by_id
-- One stored story, by id or by a unique id prefix (explain accepts the short form).
SELECT story_id, feed_id, title, summary, url, language, event_at
FROM stories WHERE story_id = $story_id OR story_id LIKE $story_id || '%'
ORDER BY story_id = $story_id DESC
LIMIT 2;

-- name: scores_of_story
SELECT topic, rules_version, score, relevant, matches, scored_at
FROM story_scores WHERE story_id = $story_id ORDER BY topic, scored_at;

-- name: upsert_rule_versions
-- The versions config.yaml holds now become current (recorded the first time they are used).
INSERT INTO rule_versions (topic, rules_version, rules, first_used_at, is_current)
SELECT unnest($topic), unnest($rules_version), unnest($rules)::JSON, $now, true
ON CONFLICT (topic, rules_version) DO UPDATE SET is_current = true;

-- name: versions_becoming_current
-- Topics whose version in config.yaml is not the current one yet (new, or used again).
SELECT now_.topic
FROM (SELECT unnest($topic) AS topic, unnest($rules_version) AS rules_version) AS now_
ANTI JOIN (SELECT topic, rules_version FROM rule_versions WHERE is_current) AS v
  USING (topic, rules_version);

-- name: set_history_stale
UPDATE rule_versions SET history_stale = list_contains($stale, topic)
WHERE list_contains($topic, topic) AND is_current;

-- name: stale_current_versions
SELECT topic FROM rule_versions WHERE is_current AND history_stale ORDER BY topic;

-- name: topics_with_older_scores
-- Topics with stories scored under other rules but not yet under the current ones: their
-- history is missing from topic_hourly / topic_daily until `tensionwatch rescore`.
WITH now_ AS (SELECT unnest($topic) AS topic, unnest($rules_version) AS rules_version)
SELECT DISTINCT sc.topic
FROM story_scores AS sc
JOIN now_ ON sc.topic = now_.topic AND sc.rules_version <> now_.rules_version
ANTI JOIN story_scores AS cur
  ON cur.story_id = sc.story_id AND cur.topic = now_.topic AND cur.rules_version = now_.rules_version
ORDER BY 1;

-- name: retire_rule_versions
-- Every other version stops being current; its scores stay and can still be queried.
UPDATE rule_versions SET is_current = false
WHERE is_current AND NOT EXISTS (
    SELECT 1 FROM (SELECT unnest($topic) AS topic, unnest($rules_version) AS rules_version) AS now_
    WHERE now_.topic = rule_versions.topic AND now_.rules_version = rule_versions.rules_version
);

-- name: stories_to_rescore
SELECT story_id, title, summary, language FROM stories
WHERE $since IS NULL OR event_at >= $since
ORDER BY story_id;

-- name: replace_scores
-- rescore --replace: scores of other versions for the rescored stories are dropped.
DELETE FROM story_scores
WHERE topic = $topic AND rules_version <> $rules_version
  AND story_id IN (SELECT story_id FROM stories WHERE $since IS NULL OR event_at >= $since);

-- name: count_scores
SELECT topic, rules_version, count(*) AS stories, count(*) FILTER (WHERE relevant) AS relevant
FROM story_scores GROUP BY ALL ORDER BY topic, rules_version;
