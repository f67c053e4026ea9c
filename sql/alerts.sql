-- Spike alerts (alerting.py, detect.py). Every table is read by time range only.

-- name: windows
-- One row per topic (its current rules), window width ($hours: each divides a day; windows
-- start at UTC midnight) and complete window in [$since, $until) that holds stories or was
-- polled: the figures detect.py judges. A window polled with no story is a row of zeros; a
-- window nobody polled has coverage NULL (unknown, never calm).
-- With $known_within_seconds, a story counts in a window only if it was first seen at most
-- that long after the window closed: each window reads as it stood when it was judged, so
-- stories backfilled later (a feed added with its archive) change no window's figures.
WITH widths AS (SELECT unnest($hours) AS hours),
topics AS (
    SELECT topic, rules_version, CAST(rules -> '$.languages' AS VARCHAR[]) AS languages
    FROM rule_versions WHERE is_current
),
scored AS (
    SELECT sc.topic, sc.event_at, sc.relevant AND sc.score > 0 AS tension, sc.relevant,
           sc.scored, sc.score, s.first_seen_at, coalesce(e.event_id, sc.story_id) AS event_id,
           coalesce(f.outlet, s.feed_id) AS outlet
    FROM (SELECT story_id, topic, rules_version, event_at, relevant, scored, score
          FROM story_scores WHERE event_at >= $since AND event_at < $until) AS sc
    JOIN topics USING (topic, rules_version)
    JOIN (SELECT story_id, feed_id, first_seen_at FROM stories
          WHERE event_at >= $since AND event_at < $until) AS s USING (story_id)
    LEFT JOIN (SELECT story_id, event_id FROM story_events
               WHERE event_at >= $since AND event_at < $until) AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
),
figures AS (
    SELECT topic, hours,
           time_bucket(to_hours(hours), event_at, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS start,
           count(*) FILTER (WHERE tension)                  AS tension_stories,
           count(*) FILTER (WHERE scored)                   AS all_stories,
           count(DISTINCT event_id) FILTER (WHERE tension)  AS events,
           coalesce(sum(score) FILTER (WHERE relevant), 0)  AS score_sum,
           count(DISTINCT outlet) FILTER (WHERE tension)    AS outlets
    FROM scored CROSS JOIN widths
    WHERE $known_within_seconds IS NULL
       OR first_seen_at <= time_bucket(to_hours(hours), event_at,
                                       TIMESTAMPTZ '2000-01-01 00:00:00+00')
                           + to_hours(hours) + to_seconds($known_within_seconds)
    GROUP BY ALL
),
polled AS (
    -- Feeds of the topic's languages (a topic without `languages` reads every feed).
    SELECT t.topic, w.hours,
           time_bucket(to_hours(w.hours), x.started_at, TIMESTAMPTZ '2000-01-01 00:00:00+00')
               AS start,
           count(DISTINCT x.feed_id) FILTER (WHERE x.outcome <> 'error') AS answered,
           count(DISTINCT x.feed_id)                                     AS polled
    FROM (SELECT feed_id, started_at, outcome FROM fetches
          WHERE started_at >= $since AND started_at < $until) AS x
    JOIN feeds AS f USING (feed_id)
    JOIN topics AS t ON t.languages IS NULL OR list_contains(t.languages, f.language)
    CROSS JOIN widths AS w
    GROUP BY ALL
)
SELECT topic, hours, start, start + to_hours(hours) AS end_,
       coalesce(tension_stories, 0), coalesce(all_stories, 0), coalesce(events, 0),
       coalesce(score_sum, 0), coalesce(outlets, 0), answered / nullif(polled, 0) AS coverage
FROM figures FULL JOIN polled USING (topic, hours, start)
WHERE start >= $since AND start + to_hours(hours) <= $until
ORDER BY end_, hours, topic;

-- name: top_events
-- The highest-scoring events of topic $topic's tension stories in [$start, $end): per event its
-- best story (title, link, score, the signal terms that earned points) and how many outlets
-- carried it in the window.
WITH tension AS (
    SELECT sc.story_id, sc.score, coalesce(e.event_id, sc.story_id) AS event_id,
           s.title, s.url, s.event_at, coalesce(f.outlet, s.feed_id) AS outlet,
           [x ->> 'term' FOR x IN CAST(sc.matches -> '$.signals' AS JSON[])
            IF CAST(x ->> 'points' AS DOUBLE) <> 0] AS terms
    FROM (SELECT story_id, score, matches FROM story_scores
          WHERE topic = $topic AND relevant AND score > 0
            AND event_at >= $start AND event_at < $end
            AND rules_version = (SELECT rules_version FROM rule_versions
                                 WHERE topic = $topic AND is_current)) AS sc
    JOIN (SELECT story_id, feed_id, title, url, event_at FROM stories
          WHERE event_at >= $start AND event_at < $end) AS s USING (story_id)
    LEFT JOIN (SELECT story_id, event_id FROM story_events
               WHERE event_at >= $start AND event_at < $end) AS e USING (story_id)
    LEFT JOIN feeds AS f ON f.feed_id = s.feed_id
)
SELECT arg_max(title, (score, event_at)) AS title, count(DISTINCT outlet) AS outlets,
       arg_max(url, (score, event_at)) AS url, max(score) AS score,
       arg_max(terms, (score, event_at)) AS terms
FROM tension
GROUP BY event_id
ORDER BY score DESC, outlets DESC, title
LIMIT $limit;
