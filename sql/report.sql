-- Statements `tensionwatch report` runs (loaded by name); $days: how many days back.

-- name: trend
-- The daily index, its 7-day mean and the threat / act split of the last $days days.
SELECT topic, CAST(day AT TIME ZONE 'UTC' AS DATE) AS day, "index", mean_7d,
       threat_sum, act_sum, relevant_stories, events, poor_coverage
FROM topic_trend
WHERE day >= date_trunc('day', now()) - to_days(CAST($days AS INTEGER) - 1)
ORDER BY topic, day;

-- name: top_events
-- Per topic, the ten events of the last $days days with the highest-scoring story: that
-- story's headline, outlet and link, and how many outlets carried the event.
WITH recent AS (
    SELECT * FROM top_stories
    WHERE day >= CAST(now() AT TIME ZONE 'UTC' AS DATE) - (CAST($days AS INTEGER) - 1)
),
best AS (
    SELECT *, row_number() OVER (PARTITION BY topic, event_id ORDER BY score DESC, rank) AS n
    FROM recent
)
SELECT topic, day, score, title, outlet, url, terms, event_outlets AS outlets
FROM best WHERE n = 1
QUALIFY row_number() OVER (PARTITION BY topic ORDER BY score DESC, day DESC) <= 10
ORDER BY topic, score DESC, day DESC;

-- name: feed_health
SELECT feed_id, outlet, last_ok_at, consecutive_failures, last_error, stories_per_day
FROM feed_health;

-- name: alerts
-- Spike alerts of the last $days days, by topic and the UTC day their window began.
SELECT topic, CAST(window_start AT TIME ZONE 'UTC' AS DATE) AS day, severity, z, window_start,
       window_hours, why
FROM alerts
WHERE kind = 'spike'
  AND window_start >= date_trunc('day', now()) - to_days(CAST($days AS INTEGER) - 1)
ORDER BY topic, window_start;
