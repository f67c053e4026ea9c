-- top_stories: per topic and UTC day, the ten highest-scoring relevant stories under the current
-- rules (rank 1 = highest), with the outlet, the link, the event the story belongs to and how
-- many outlets carried that event, and the signal terms that scored. The ranks are kept in
-- top_story_ranks by every cycle for the days its stories touch, and for the days of the
-- events they join (whose outlet counts change), so one day is read, not every story.
CREATE VIEW top_stories AS
SELECT r.topic, r.day, r.rank, r.score, r.title, r.outlet, r.url, r.event_at, r.story_id,
       r.event_id, r.event_outlets, r.terms
FROM top_story_ranks AS r
JOIN rule_versions AS v USING (topic, rules_version)
WHERE v.is_current
ORDER BY r.topic, r.day, r.rank;
