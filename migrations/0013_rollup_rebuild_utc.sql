-- tocsin_rebuild_rollups truncated hours in the session's time zone, so a
-- rebuild from a session in a zone with a :30 or :45 offset wrote rollup
-- hours that are not UTC hours (ingestion writes UTC hours); and a to_time
-- inside an hour deleted that hour's rollup but re-added only part of it.
-- Hours are UTC hours now, the range is widened to whole hours at both ends,
-- and the rollups are locked against ingestion's upserts for the rebuild, so
-- a batch committed meanwhile is counted once: before the rebuild reads the
-- events, or added by its own upsert after the rebuild commits.
CREATE OR REPLACE FUNCTION tocsin_rebuild_rollups(from_time timestamptz, to_time timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    written bigint;
    from_hour timestamptz := date_trunc('hour', from_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
    to_hour timestamptz := date_trunc('hour', to_time AT TIME ZONE 'UTC') AT TIME ZONE 'UTC';
BEGIN
    IF to_hour < to_time THEN
        to_hour := to_hour + interval '1 hour';
    END IF;
    LOCK TABLE metric_rollups IN SHARE ROW EXCLUSIVE MODE;
    DELETE FROM metric_rollups WHERE hour >= from_hour AND hour < to_hour;
    INSERT INTO metric_rollups (hour, name, platform, shard, count, sum, min, max, histogram)
    SELECT hour, name, platform, 0, sum(n)::bigint, sum(s), min(lo), max(hi),
           CASE WHEN name ~ '(^|\.)(latency|duration)$' THEN tocsin_histogram_from(array_agg(bucket), array_agg(n)) END
    FROM (
        SELECT date_trunc('hour', occurred_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, name,
               coalesce(platform, '') AS platform, tocsin_histogram_bucket(value) AS bucket, count(*) AS n,
               sum(value) AS s, min(value) AS lo, max(value) AS hi
        FROM metric_events
        WHERE occurred_at >= from_hour AND occurred_at < to_hour
        GROUP BY 1, 2, 3, 4
    ) buckets
    GROUP BY hour, name, platform;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;
