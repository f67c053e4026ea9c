-- 005: a cycle's work must not grow with history.
-- story_events keeps each story's event_at, so the window a cycle groups against is read by
-- time range alone (DuckDB skips the row groups outside it) instead of joining all of
-- story_events. rule_versions remembers whether a version's topic has history not yet
-- rescored under it, so a cycle no longer anti-joins all of story_scores to find out: that is
-- worked out once, when a version is first used, and again after each rescore.

ALTER TABLE story_events ADD COLUMN event_at TIMESTAMPTZ;
UPDATE story_events SET event_at = s.event_at FROM stories AS s
WHERE s.story_id = story_events.story_id;

ALTER TABLE rule_versions ADD COLUMN history_stale BOOLEAN DEFAULT false;
-- Worked out once here for the versions current now.
UPDATE rule_versions SET history_stale = topic IN (
    SELECT DISTINCT sc.topic
    FROM story_scores AS sc
    JOIN rule_versions AS cur
      ON cur.topic = sc.topic AND cur.is_current AND sc.rules_version <> cur.rules_version
    ANTI JOIN story_scores AS c2
      ON c2.story_id = sc.story_id AND c2.topic = sc.topic AND c2.rules_version = cur.rules_version
)
WHERE is_current;
