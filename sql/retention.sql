-- The prune step (retention.py): what retention removes, counted or removed, by name.
-- $story_text_before and $fetch_logs_before are UTC midnights; NULL keeps that kind for good.
-- Each removal and its count share one condition, so `prune --dry-run` counts what a prune
-- removes.

-- name: summaries
-- Story text is kept for a while after the story happened *and* after it was first seen: a
-- feed added with its archive keeps the text of its old stories as long as a new story's.
SELECT count(*) FROM stories
WHERE summary IS NOT NULL AND greatest(event_at, first_seen_at) < $story_text_before;

-- name: remove_summaries
UPDATE stories SET summary = NULL
WHERE summary IS NOT NULL AND greatest(event_at, first_seen_at) < $story_text_before;

-- name: title_words
-- The headline words grouping compares are read only inside events.window_hours of a new
-- story; a story grouped later into that window has its headline folded again (store.sql,
-- stories_near). They go with the story text.
SELECT count(*) FROM story_events
WHERE title_words IS NOT NULL AND event_at < $story_text_before;

-- name: remove_title_words
UPDATE story_events SET title_words = NULL
WHERE title_words IS NOT NULL AND event_at < $story_text_before;

-- name: fetches
SELECT count(*) FROM fetches WHERE started_at < $fetch_logs_before;

-- name: remove_fetches
DELETE FROM fetches WHERE started_at < $fetch_logs_before;

-- name: record_prune
INSERT INTO prunes (pruned_at, story_text_before, fetch_logs_before, summaries_removed,
                    title_words_removed, fetches_removed)
VALUES ($pruned_at, $story_text_before, $fetch_logs_before, $summaries, $title_words, $fetches);

-- name: last_pruned_at
-- The prune recorded last (rowid follows insertion; nothing is deleted from prunes): after the
-- clock was set back, the latest prune is not the one with the latest time.
SELECT pruned_at FROM prunes ORDER BY rowid DESC LIMIT 1;

-- name: horizons
-- Up to when each kind has been removed (NULL: never): what readers of old history must know.
SELECT max(story_text_before), max(fetch_logs_before) FROM prunes;

-- name: catalog
-- The tables, views and macros of the database: a compacted copy must hold the same.
SELECT 'table', table_name FROM duckdb_tables() WHERE database_name = current_database()
UNION ALL
SELECT 'view', view_name FROM duckdb_views()
WHERE database_name = current_database() AND NOT internal
UNION ALL
SELECT 'macro', function_name FROM duckdb_functions()
WHERE database_name = current_database() AND function_type LIKE '%macro' AND NOT internal
ORDER BY ALL;
