-- runs_summary: one row per monitoring cycle: how long it took, how its feeds fared (asked, and
-- not asked: not due yet, waiting after failures or a Retry-After, retired), how many stories
-- were new, and how many of those each topic found relevant (under the rules the cycle used).
CREATE VIEW runs_summary AS
WITH relevant AS (
    SELECT s.run_id, sc.topic, count(*) FILTER (WHERE sc.relevant) AS n
    FROM stories AS s
    JOIN story_scores AS sc USING (story_id)
    JOIN runs AS r USING (run_id)
    WHERE sc.rules_version = r.rules_versions ->> sc.topic
    GROUP BY ALL
)
SELECT r.run_id, r.started_at, r.finished_at, r.stored_at,
       epoch(r.finished_at - r.started_at) AS duration_s,
       epoch(r.stored_at - r.finished_at)  AS wait_to_store_s,
       r.feeds_total, r.feeds_ok, r.feeds_unchanged, r.feeds_failed,
       r.feeds_not_due, r.feeds_waiting, r.feeds_retired,
       r.entries_seen, r.stories_new,
       coalesce((SELECT map_from_entries(list((rel.topic, rel.n)))
                 FROM relevant AS rel WHERE rel.run_id = r.run_id), MAP {}) AS relevant_by_topic
FROM runs AS r
ORDER BY r.started_at;
