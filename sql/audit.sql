-- Statements of `tensionwatch audit` (loaded by audit.py by name).

-- name: audit_sample
-- A random sample of one topic's stories under its current rules, the same for the same $seed:
-- $kind 'flagged' = stories the rules call relevant; 'near_miss' = stories that name both
-- parties (the topic's `parties` groups, anywhere: the "both named" baseline) but are not
-- flagged (no concern term, an exclusion, no signal, the parties apart, not the focus).
-- Stories in a language the topic does not cover are neither.
WITH current_scores AS (
    SELECT sc.story_id, sc.rules_version, sc.score, sc.relevant, sc.matches
    FROM story_scores AS sc
    JOIN rule_versions AS rv
      ON rv.topic = sc.topic AND rv.rules_version = sc.rules_version AND rv.is_current
    WHERE sc.topic = $topic
)
SELECT c.story_id, c.rules_version, c.score, s.feed_id, s.title, s.summary, s.url, s.event_at
FROM current_scores AS c
JOIN stories AS s USING (story_id)
WHERE (
        ($kind = 'flagged' AND c.relevant)
     OR ($kind = 'near_miss' AND NOT c.relevant
         AND coalesce(CAST(json_extract(c.matches, '$.parties_named') AS BOOLEAN), false))
      )
  AND ($since IS NULL OR s.event_at >= $since)
  AND ($until IS NULL OR s.event_at < $until)
ORDER BY hash(c.story_id || $seed), c.story_id
LIMIT $n;

-- name: audit_population
-- How many stories each kind holds (the sample's population, for the report).
SELECT count(*) FILTER (WHERE sc.relevant) AS flagged,
       count(*) FILTER (WHERE NOT sc.relevant
                        AND coalesce(CAST(json_extract(sc.matches, '$.parties_named') AS BOOLEAN),
                                     false)) AS near_misses
FROM story_scores AS sc
JOIN rule_versions AS rv
  ON rv.topic = sc.topic AND rv.rules_version = sc.rules_version AND rv.is_current
JOIN stories AS s USING (story_id)
WHERE sc.topic = $topic
  AND ($since IS NULL OR s.event_at >= $since)
  AND ($until IS NULL OR s.event_at < $until);
