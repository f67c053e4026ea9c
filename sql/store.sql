-- Statements the monitoring cycle runs against the database (loaded by store.py by name).
-- Lists of values arrive as bound list parameters and are turned into rows with unnest():
-- one statement per table per cycle instead of one per row (row-by-row executemany is
-- hundreds of times slower in DuckDB).

-- name: feed_states
-- What the next cycle needs for each feed (fetch.FeedState): validators and the hash of the
-- last body for conditional GET, and its polling state: where it moved, its failures in a
-- row, when it is next due and why, whether it is retired, its <ttl>.
SELECT feed_id, url, etag, last_modified, body_hash, moved_to, consecutive_failures,
       next_due_at, due_reason, retired_at, ttl_minutes
FROM feeds;

-- name: feed_states_before_009
-- The same from a database a cycle of this version has not migrated yet (no polling state):
-- its validators still spare every feed a full download on the first cycle after an upgrade.
SELECT feed_id, url, etag, last_modified, body_hash, NULL, consecutive_failures FROM feeds;

-- name: upsert_feeds
-- Feeds as configured now. A feed keeps its fetch state when its language changes; a new
-- address drops the validators and the polling state, which belong to the old one: a feed
-- retired (410 Gone), moved, backing off or told to wait is asked at its new address now.
INSERT INTO feeds (feed_id, url, language, added_at, outlet)
SELECT unnest($feed_id), unnest($url), unnest($language), $now, unnest($outlet)
ON CONFLICT (feed_id) DO UPDATE SET
    outlet = excluded.outlet,
    etag = CASE WHEN feeds.url = excluded.url THEN feeds.etag END,
    last_modified = CASE WHEN feeds.url = excluded.url THEN feeds.last_modified END,
    body_hash = CASE WHEN feeds.url = excluded.url THEN feeds.body_hash END,
    moved_to = CASE WHEN feeds.url = excluded.url THEN feeds.moved_to END,
    next_due_at = CASE WHEN feeds.url = excluded.url THEN feeds.next_due_at END,
    due_reason = CASE WHEN feeds.url = excluded.url THEN feeds.due_reason END,
    retired_at = CASE WHEN feeds.url = excluded.url THEN feeds.retired_at END,
    ttl_minutes = CASE WHEN feeds.url = excluded.url THEN feeds.ttl_minutes END,
    consecutive_failures = CASE WHEN feeds.url = excluded.url
                                THEN feeds.consecutive_failures ELSE 0 END,
    url = excluded.url,
    language = excluded.language;

-- name: run_is_stored
-- A kept batch replayed after its cycle was stored (killed between COMMIT and clean-up).
SELECT 1 FROM runs WHERE run_id = $run_id;

-- name: remembered_story_ids
-- Which of the given story ids a feed carried in its last stored body: stored, for certain
-- (they were written in the same transaction), and found without reading `stories`.
SELECT DISTINCT story_id FROM (SELECT unnest(recent_story_ids) AS story_id FROM feeds)
WHERE story_id IN (SELECT unnest($story_id));

-- name: known_story_ids
-- Which of the given story ids are already stored. This reads every stored id, so the cycle
-- asks it only about many ids at once (store.py, _known_story_ids).
SELECT story_id FROM stories WHERE story_id IN (SELECT unnest($story_id));

-- name: story_id_stored
-- One id, looked up in the primary key's index (a few pages, not every stored id); the cycle
-- asks about the ids its feeds did not carry last time with these, joined by UNION ALL.
SELECT story_id FROM stories WHERE story_id = ?

-- name: remember_story_ids
-- The stories each feed's body carried this cycle (feeds that answered with a new body).
UPDATE feeds SET recent_story_ids = s.story_ids
FROM (SELECT unnest($feed_id) AS feed_id, unnest($story_ids) AS story_ids) AS s
WHERE feeds.feed_id = s.feed_id;

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

-- name: common_words_near
-- Words on more than $max_posting headlines of the window: they find no copy that a rarer
-- word of the headline would not find (events.py), so they are not used to look for copies.
SELECT word FROM (SELECT unnest(title_words) AS word FROM story_events
                  WHERE event_at BETWEEN $since AND $until)
GROUP BY word HAVING count(*) > $max_posting;

-- name: stories_near
-- The stories of the window around a cycle's new stories that may be their copies: those that
-- share one of $words (the new headlines' words that are not common in the window), and those
-- grouped before their words were kept. Every table is read by time range, so the cost
-- follows the window, not the history.
WITH near AS (
    SELECT story_id, event_id, event_started_at, title_words FROM story_events
    WHERE event_at BETWEEN $since AND $until
      AND (title_words IS NULL OR list_has_any(title_words, $words))
)
SELECT s.story_id, s.feed_id, s.title, s.event_at, coalesce(n.event_id, s.story_id),
       coalesce(n.event_started_at, s.event_at), n.title_words
FROM (SELECT story_id, feed_id, title, event_at FROM stories
      WHERE event_at BETWEEN $since AND $until) AS s
LEFT JOIN near AS n USING (story_id)
WHERE (n.story_id IS NOT NULL
       OR s.story_id NOT IN (SELECT story_id FROM story_events
                             WHERE event_at BETWEEN $since AND $until))
  AND s.story_id NOT IN (SELECT unnest($story_id));

-- name: insert_story_events
-- Only a cycle's new stories are grouped, so none has a row yet.
INSERT INTO story_events (story_id, event_id, similarity, grouped_at, event_at,
                          event_started_at, title_words)
SELECT unnest($story_id), unnest($event_id), unnest($similarity), $now, unnest($event_at),
       unnest($event_started_at), unnest($title_words);

-- name: insert_scores
-- The scores of a cycle's new stories: new, so none is stored yet (story_scores has no key
-- index to check that with: migration 007).
INSERT INTO story_scores (story_id, topic, rules_version, score, relevant, matches, scored_at,
                          scored, threat_points, act_points, event_at)
SELECT unnest($story_id), unnest($topic), unnest($rules_version), unnest($score),
       unnest($relevant), unnest($matches)::JSON, unnest($scored_at), unnest($scored),
       unnest($threat_points), unnest($act_points), unnest($event_at);

-- name: insert_rescored
-- Scoring is deterministic, so a story's score under one version never changes: rescore skips
-- the scores already stored. They are looked for among the scores of the rescored stories'
-- time range [$since, $until] only, which DuckDB reads by its row groups' ranges.
INSERT INTO story_scores (story_id, topic, rules_version, score, relevant, matches, scored_at,
                          scored, threat_points, act_points, event_at)
SELECT n.* FROM (
    SELECT unnest($story_id) AS story_id, unnest($topic) AS topic,
           unnest($rules_version) AS rules_version, unnest($score) AS score,
           unnest($relevant) AS relevant, unnest($matches)::JSON AS matches,
           unnest($scored_at) AS scored_at, unnest($scored) AS scored,
           unnest($threat_points) AS threat_points, unnest($act_points) AS act_points,
           unnest($event_at) AS event_at
) AS n
ANTI JOIN (SELECT story_id, topic, rules_version FROM story_scores
           WHERE event_at BETWEEN $since AND $until) AS stored
  USING (story_id, topic, rules_version);

-- name: insert_fetches
-- A cycle kept in the pending folder and delivered twice after a crash is skipped whole
-- (run_is_stored), so no fetch is stored twice (fetches has no key index: migration 010).
INSERT INTO fetches (fetch_id, run_id, feed_id, url, final_url, started_at, duration_ms,
                     attempts, outcome, status_code, bytes, entries_seen, entries_new, error,
                     warning, next_due_at, due_reason)
SELECT unnest($fetch_id), unnest($run_id), unnest($feed_id), unnest($url), unnest($final_url),
       unnest($started_at), unnest($duration_ms), unnest($attempts), unnest($outcome),
       unnest($status_code), unnest($bytes), unnest($entries_seen), unnest($entries_new),
       unnest($error), unnest($warning), unnest($next_due_at), unnest($due_reason);

-- name: update_feed_states
-- After a fetch (feeds not asked this cycle keep their state as it is): new validators on
-- success; on failure they stay. The polling state is the cycle's (polling.py); a batch kept
-- by a tensionwatch from before polling ($failures NULL) counts failures as it did. A fetch of
-- another address than the feed's current one (a batch kept from before the address changed)
-- leaves the feed's state alone.
UPDATE feeds SET
    title = coalesce(s.title, feeds.title),
    etag = CASE WHEN s.failed THEN feeds.etag ELSE s.etag END,
    last_modified = CASE WHEN s.failed THEN feeds.last_modified ELSE s.last_modified END,
    body_hash = CASE WHEN s.failed THEN feeds.body_hash ELSE s.body_hash END,
    last_fetched_at = s.fetched_at,
    last_ok_at = CASE WHEN s.failed THEN feeds.last_ok_at ELSE s.fetched_at END,
    consecutive_failures = coalesce(
        s.failures, CASE WHEN s.failed THEN feeds.consecutive_failures + 1 ELSE 0 END),
    next_due_at = s.next_due_at,
    due_reason = s.due_reason,
    retired_at = s.retired_at,
    moved_to = CASE WHEN s.failures IS NULL THEN feeds.moved_to ELSE s.moved_to END,
    ttl_minutes = CASE WHEN s.failures IS NULL THEN feeds.ttl_minutes ELSE s.ttl_minutes END
FROM (
    SELECT unnest($feed_id) AS feed_id, unnest($url) AS url, unnest($title) AS title,
           unnest($etag) AS etag,
           unnest($last_modified) AS last_modified, unnest($body_hash) AS body_hash,
           unnest($fetched_at) AS fetched_at, unnest($failed) AS failed,
           unnest($failures) AS failures, unnest($next_due_at) AS next_due_at,
           unnest($due_reason) AS due_reason, unnest($retired_at) AS retired_at,
           unnest($moved_to) AS moved_to, unnest($ttl_minutes) AS ttl_minutes
) AS s
WHERE feeds.feed_id = s.feed_id AND feeds.url = s.url;

-- name: insert_run
INSERT INTO runs (run_id, started_at, finished_at, stored_at, feeds_total, feeds_ok,
                  feeds_unchanged, feeds_failed, entries_seen, stories_new, rules_versions,
                  feeds_not_due, feeds_waiting, feeds_retired)
VALUES ($run_id, $started_at, $finished_at, $stored_at, $feeds_total, $feeds_ok,
        $feeds_unchanged, $feeds_failed, $entries_seen, $stories_new, $rules_versions,
        $feeds_not_due, $feeds_waiting, $feeds_retired)
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
-- history is missing from topic_hourly / topic_daily until `tensionwatch rescore`. Stories
-- whose text a prune removed cannot be rescored, so they do not count.
WITH now_ AS (SELECT unnest($topic) AS topic, unnest($rules_version) AS rules_version)
SELECT DISTINCT sc.topic
FROM story_scores AS sc
JOIN now_ ON sc.topic = now_.topic AND sc.rules_version <> now_.rules_version
ANTI JOIN story_scores AS cur
  ON cur.story_id = sc.story_id AND cur.topic = now_.topic AND cur.rules_version = now_.rules_version
ANTI JOIN (SELECT story_id FROM stories WHERE summary IS NULL) AS pruned
  ON pruned.story_id = sc.story_id
ORDER BY 1;

-- name: retire_rule_versions
-- Every other version stops being current; its scores stay and can still be queried.
UPDATE rule_versions SET is_current = false
WHERE is_current AND NOT EXISTS (
    SELECT 1 FROM (SELECT unnest($topic) AS topic, unnest($rules_version) AS rules_version) AS now_
    WHERE now_.topic = rule_versions.topic AND now_.rules_version = rule_versions.rules_version
);

-- name: stories_to_rescore
-- In time order, so the new scores lie in story_scores as the cycles' do: by time, which
-- lets the trend tables' refresh skip the rest. A story whose summary a prune removed
-- (retention.py) is not rescored: from its headline alone it would score as another story.
SELECT story_id, title, summary, language, event_at FROM stories
WHERE ($since IS NULL OR event_at >= $since) AND summary IS NOT NULL
ORDER BY event_at, story_id;

-- name: stories_without_text
-- The stories rescore leaves as they are: their summary was removed by a prune.
SELECT count(*), max(event_at) FROM stories
WHERE ($since IS NULL OR event_at >= $since) AND summary IS NULL;

-- name: replace_scores
-- rescore --replace: scores of other versions for the rescored stories are dropped (a story
-- without its text is not rescored, so it keeps them).
DELETE FROM story_scores
WHERE topic = $topic AND rules_version <> $rules_version
  AND story_id IN (SELECT story_id FROM stories
                   WHERE ($since IS NULL OR event_at >= $since) AND summary IS NOT NULL);

-- name: count_scores
SELECT topic, rules_version, count(*) AS stories, count(*) FILTER (WHERE relevant) AS relevant
FROM story_scores GROUP BY ALL ORDER BY topic, rules_version;

-- Trend tables (migration 006): what topic_hourly / topic_daily / top_stories read. Each
-- refresh recomputes whole buckets from the stories in [$since, $until) (whole UTC days), so
-- a figure is never added up across cycles; every table is read by time range only.

-- name: history_span
-- The first and last moment of stored history, stories and fetches both (rebuilds start here).
SELECT min(x), max(x) FROM (
    SELECT min(event_at) AS x FROM stories UNION ALL SELECT max(event_at) FROM stories
    UNION ALL SELECT min(started_at) FROM fetches UNION ALL SELECT max(started_at) FROM fetches
);

-- name: delete_topic_buckets
DELETE FROM topic_buckets WHERE bucket >= $since AND bucket < $until;

-- name: insert_topic_buckets
INSERT INTO topic_buckets
WITH scored AS (
    SELECT sc.topic, sc.rules_version, sc.event_at AT TIME ZONE 'UTC' AS utc_at,
           sc.relevant, sc.scored, sc.score, sc.threat_points, sc.act_points,
           coalesce(e.event_id, sc.story_id) AS event_id,
           coalesce(f.outlet, s.feed_id) AS outlet
    FROM (SELECT story_id, topic, rules_version, event_at, relevant, scored, score,
                 threat_points, act_points
          FROM story_scores WHERE event_at >= $since AND event_at < $until) AS sc
    JOIN (SELECT story_id, feed_id FROM stories
          WHERE event_at >= $since AND event_at < $until) AS s USING (story_id)
    LEFT JOIN (SELECT story_id, event_id FROM story_events
               WHERE event_at >= $since AND event_at < $until) AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
)
SELECT topic, rules_version, width, date_trunc(width, utc_at) AT TIME ZONE 'UTC' AS bucket,
       count(*) FILTER (WHERE relevant)                          AS relevant_stories,
       count(*) FILTER (WHERE relevant AND score > 0)            AS tension_stories,
       count(DISTINCT event_id) FILTER (WHERE relevant)          AS events,
       count(*) FILTER (WHERE scored)                            AS all_stories,
       count(*) FILTER (WHERE NOT scored)                        AS unscored_stories,
       coalesce(sum(score) FILTER (WHERE relevant), 0)           AS score_sum,
       avg(score) FILTER (WHERE relevant)                        AS score_mean,
       coalesce(sum(threat_points) FILTER (WHERE relevant), 0)   AS threat_sum,
       coalesce(sum(act_points) FILTER (WHERE relevant), 0)      AS act_sum,
       count(DISTINCT outlet) FILTER (WHERE relevant)            AS outlets
FROM scored CROSS JOIN (VALUES ('hour'), ('day')) AS w(width)
GROUP BY ALL;

-- name: has_prunes
-- Whether the database has the table of prunes (migration 010): a rebuild run by an earlier
-- migration has no fetch logs removed yet.
SELECT count(*) FROM duckdb_tables()
WHERE database_name = current_database() AND table_name = 'prunes';

-- name: fetch_logs_kept_from
-- Fetches before this were removed by a prune (retention.py): the polling buckets of those
-- days were computed from them and are never recomputed from what is left.
SELECT max(fetch_logs_before) FROM prunes;

-- name: delete_polling_buckets
DELETE FROM polling_buckets WHERE bucket >= $since AND bucket < $until;

-- name: insert_polling_buckets
-- Feeds polled and feeds that answered, per bucket and feed language (coverage per topic).
-- Every cycle accounts for every feed: a feed not due yet (`not_due`) answered as far as
-- coverage goes, its last answer still current; one backing off, told to wait or retired
-- (`waiting`, `retired`) was polled and did not answer, as one that failed (`error`).
INSERT INTO polling_buckets
SELECT w.width, date_trunc(w.width, x.started_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       f.language,
       count(DISTINCT x.feed_id)
           FILTER (WHERE x.outcome IN ('ok', 'not_modified', 'unchanged', 'not_due')),
       count(DISTINCT x.feed_id)
FROM (SELECT feed_id, started_at, outcome FROM fetches
      WHERE started_at >= $since AND started_at < $until) AS x
JOIN feeds AS f USING (feed_id)
CROSS JOIN (VALUES ('hour'), ('day')) AS w(width)
GROUP BY ALL;

-- name: events_started_since
-- The earliest start of the events with stories in [$since, $until): an event's outlets are
-- counted over its stories from then on.
SELECT least(min(event_started_at), $since) FROM story_events
WHERE event_at >= $since AND event_at < $until;

-- name: delete_top_story_ranks
DELETE FROM top_story_ranks WHERE day >= CAST($since AS DATE) AND day < CAST($until AS DATE);

-- name: insert_top_story_ranks
INSERT INTO top_story_ranks
WITH ranked AS (
    SELECT sc.topic, sc.rules_version, CAST(s.event_at AT TIME ZONE 'UTC' AS DATE) AS day,
           row_number() OVER (PARTITION BY sc.topic, sc.rules_version,
                                            CAST(s.event_at AT TIME ZONE 'UTC' AS DATE)
                              ORDER BY sc.score DESC, s.event_at, s.story_id) AS rank,
           sc.score, s.title, coalesce(f.outlet, s.feed_id) AS outlet, s.url, s.event_at,
           s.story_id, coalesce(e.event_id, s.story_id) AS event_id,
           [x ->> 'term' FOR x IN CAST(sc.matches -> '$.signals' AS JSON[])
            IF CAST(x ->> 'points' AS DOUBLE) <> 0] AS terms
    FROM (SELECT story_id, topic, rules_version, score, matches FROM story_scores
          WHERE relevant AND event_at >= $since AND event_at < $until) AS sc
    JOIN (SELECT story_id, feed_id, title, url, event_at FROM stories
          WHERE event_at >= $since AND event_at < $until) AS s USING (story_id)
    LEFT JOIN (SELECT story_id, event_id FROM story_events
               WHERE event_at >= $since AND event_at < $until) AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
    QUALIFY rank <= 10
),
event_outlets AS (
    SELECT coalesce(e.event_id, s.story_id) AS event_id,
           count(DISTINCT coalesce(f.outlet, s.feed_id)) AS event_outlets
    FROM (SELECT story_id, feed_id FROM stories WHERE event_at >= $events_since) AS s
    LEFT JOIN (SELECT story_id, event_id FROM story_events
               WHERE event_at >= $events_since) AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
    WHERE coalesce(e.event_id, s.story_id) IN (SELECT event_id FROM ranked)
    GROUP BY ALL
)
SELECT r.topic, r.rules_version, r.day, r.rank, r.score, r.title, r.outlet, r.url, r.event_at,
       r.story_id, r.event_id, o.event_outlets, r.terms
FROM ranked AS r JOIN event_outlets AS o USING (event_id);

-- name: forget_alert_windows
-- After a rescore, a topic's kept alert windows (as they stood under its old scores) are read
-- again from the rescored stories.
DELETE FROM alert_windows WHERE topic = $topic;
