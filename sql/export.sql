-- Statements `tensionwatch export --parquet DIR` runs (loaded by name), each writing one table
-- as Parquet files partitioned by UTC day (DIR/<table>/day=YYYY-MM-DD/…), for tools elsewhere.
-- {dir} is the folder's path, quoted by export.py (COPY takes no bound parameter for it).

-- name: stories
COPY (SELECT *, CAST(event_at AT TIME ZONE 'UTC' AS DATE) AS day FROM stories)
TO '{dir}/stories' (FORMAT parquet, PARTITION_BY (day), OVERWRITE_OR_IGNORE);

-- name: story_scores
COPY (SELECT sc.*, CAST(s.event_at AT TIME ZONE 'UTC' AS DATE) AS day
      FROM story_scores AS sc JOIN stories AS s USING (story_id))
TO '{dir}/story_scores' (FORMAT parquet, PARTITION_BY (day), OVERWRITE_OR_IGNORE);

-- name: story_events
COPY (SELECT e.*, CAST(s.event_at AT TIME ZONE 'UTC' AS DATE) AS day
      FROM story_events AS e JOIN stories AS s USING (story_id))
TO '{dir}/story_events' (FORMAT parquet, PARTITION_BY (day), OVERWRITE_OR_IGNORE);

-- name: topic_daily
COPY (SELECT *, CAST(bucket AT TIME ZONE 'UTC' AS DATE) AS day FROM topic_daily)
TO '{dir}/topic_daily' (FORMAT parquet, PARTITION_BY (day), OVERWRITE_OR_IGNORE);
