-- feed_health: one row per configured feed: when it last answered, when and why it last failed,
-- how many times in a row it has failed, when it is next asked and why then (its interval, its
-- <ttl> or max-age, a backoff after failures, a Retry-After; never: retired after 410 Gone),
-- where it moved, how often it answers 304 Not Modified, how many new stories it brings per day,
-- and its median fetch time. Retired feeds first, then failing ones. The counts cover the fetch
-- logs kept (retention.fetch_log_days): new stories per day are counted over the days they cover.
CREATE VIEW feed_health AS
WITH stats AS (
    SELECT feed_id,
           count(*) FILTER (WHERE outcome NOT IN ('not_due', 'waiting', 'retired'))
                                                                      AS fetches,
           count(*) FILTER (WHERE outcome = 'not_modified')
             / nullif(count(*) FILTER (WHERE outcome NOT IN ('not_due', 'waiting', 'retired')),
                      0)                                              AS share_304,
           median(duration_ms) FILTER (WHERE outcome NOT IN ('not_due', 'waiting', 'retired'))
                                                                      AS median_fetch_ms,
           sum(entries_new)                                           AS stories_new,
           min(started_at)                                            AS first_fetch_at,
           max(started_at) FILTER (WHERE outcome = 'error')           AS last_error_at,
           arg_max(error, started_at) FILTER (WHERE outcome = 'error') AS last_error
    FROM fetches
    GROUP BY feed_id
)
SELECT f.feed_id, coalesce(f.outlet, f.feed_id) AS outlet, f.language, f.url,
       f.last_ok_at, f.last_fetched_at, s.last_error_at, s.last_error,
       f.consecutive_failures, f.next_due_at, f.due_reason, f.retired_at, f.moved_to,
       coalesce(s.fetches, 0) AS fetches, s.share_304,
       coalesce(s.stories_new, 0)
         / greatest(1.0, epoch(now() - greatest(f.added_at, s.first_fetch_at)) / 86400.0)
                                                                     AS stories_per_day,
       s.median_fetch_ms
FROM feeds AS f
LEFT JOIN stats AS s USING (feed_id)
ORDER BY f.retired_at IS NOT NULL DESC, f.consecutive_failures DESC, f.feed_id;
