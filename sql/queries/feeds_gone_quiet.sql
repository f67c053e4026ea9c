-- Which feeds have gone quiet? Failing now, or answering without a new story for three days,
-- with when they last brought one; a quiet feed makes its outlet's topics look calm.
WITH last_new AS (
    SELECT feed_id, max(started_at) FILTER (WHERE entries_new > 0) AS last_new_story_at
    FROM fetches GROUP BY feed_id
)
SELECT h.feed_id, h.outlet, h.language, h.consecutive_failures, h.last_ok_at, l.last_new_story_at,
       h.last_error
FROM feed_health AS h
LEFT JOIN last_new AS l USING (feed_id)
WHERE h.consecutive_failures > 0
   OR l.last_new_story_at IS NULL
   OR l.last_new_story_at < now() - INTERVAL 3 DAY
ORDER BY h.consecutive_failures DESC, l.last_new_story_at NULLS FIRST, h.feed_id;
