-- topic_hourly: one row per topic and UTC hour under the topic's current rules (the version
-- config.yaml holds now); topic_hourly_by_version has every version. Columns: README "Views".
CREATE VIEW topic_hourly_by_version AS SELECT * FROM topic_index_by_version('hour');
CREATE VIEW topic_hourly AS
SELECT t.* FROM topic_hourly_by_version AS t
JOIN rule_versions AS v USING (topic, rules_version)
WHERE v.is_current;
