-- Which hours of the last 48 hours stand out from the four weeks before, per topic?
-- A robust z-score of each hour's index against the median and MAD of the same topic's hours in
-- the 28 days before the window (floored spread, so a quiet baseline does not divide by zero).
-- Hours with poor coverage are shown but marked: a spike there may be an artefact.
WITH recent AS (
    SELECT * FROM topic_hourly WHERE bucket >= now() - INTERVAL 48 HOUR
),
baseline AS (
    SELECT topic, median(coalesce("index", 0)) AS med,
           median(abs(coalesce("index", 0) - (SELECT median(coalesce("index", 0)) FROM topic_hourly AS i
                                               WHERE i.topic = h.topic
                                                 AND i.bucket >= now() - INTERVAL 30 DAY
                                                 AND i.bucket < now() - INTERVAL 48 HOUR))) AS mad
    FROM topic_hourly AS h
    WHERE bucket >= now() - INTERVAL 30 DAY AND bucket < now() - INTERVAL 48 HOUR
    GROUP BY topic
)
SELECT r.topic, r.bucket, r.relevant_stories, r.events, r.outlets, round(r."index", 1) AS "index",
       round((coalesce(r."index", 0) - b.med) / greatest(1.4826 * b.mad, 10), 2) AS robust_z,
       r.poor_coverage
FROM recent AS r JOIN baseline AS b USING (topic)
WHERE r.relevant_stories > 0
ORDER BY robust_z DESC
LIMIT 20;
