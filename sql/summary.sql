-- What the run summary (summary.py) reads after a cycle is stored.

-- name: index_today
-- Each topic's index for today (UTC, so far) beside the mean of the 28 days up to it, under
-- the topic's current rules: the figure a run's summary puts against its baseline.
SELECT topic, strftime(day AT TIME ZONE 'UTC', '%Y-%m-%d'), "index", mean_28d,
       relevant_stories, poor_coverage
FROM topic_trend
WHERE topic IN (SELECT unnest($topic))
  AND day = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
ORDER BY topic;
