-- topic_trend: one row per topic and UTC day: the daily index beside its 7- and 28-day rolling
-- means (the days before it, itself included) and how far the day stands from each, with the
-- day's threat / act split. The days are topic_daily's, zeros included, so a rolling mean is
-- over days, not over rows that happen to exist.
CREATE VIEW topic_trend AS
SELECT topic, bucket AS day, "index", share, relevant_stories, events, threat_sum, act_sum,
       poor_coverage,
       avg("index") OVER w7  AS mean_7d,
       avg("index") OVER w28 AS mean_28d,
       "index" - avg("index") OVER w7  AS deviation_7d,
       "index" - avg("index") OVER w28 AS deviation_28d
FROM topic_daily
WINDOW w7  AS (PARTITION BY topic ORDER BY bucket ROWS BETWEEN 6 PRECEDING AND CURRENT ROW),
       w28 AS (PARTITION BY topic ORDER BY bucket ROWS BETWEEN 27 PRECEDING AND CURRENT ROW)
ORDER BY topic, day;
