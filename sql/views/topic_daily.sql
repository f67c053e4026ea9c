-- topic_daily: one row per topic and UTC day under the topic's current rules; topic_daily_by_version
-- has every version. Columns: README "Views".
CREATE VIEW topic_daily_by_version AS SELECT * FROM topic_index_by_version('day');
CREATE VIEW topic_daily AS
SELECT t.* FROM topic_daily_by_version AS t
JOIN rule_versions AS v USING (topic, rules_version)
WHERE v.is_current;
