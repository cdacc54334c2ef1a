-- Hourly rollups of metric_events, so the metrics summary over a day or a
-- week reads a few thousand rows instead of every event. Ingestion adds
-- each batch's counts in the same transaction as the events (exact counts,
-- no lag); `shard` spreads concurrent batches over several rows so they do
-- not queue on one. Latency and duration names also keep a histogram of
-- log-scale buckets (10 % wide) for p95 estimates over long ranges.
-- Events written into metric_events by other means are added with
-- tocsin_rebuild_rollups(from, to).
CREATE TABLE metric_rollups (
    hour      timestamptz      NOT NULL,
    name      text             NOT NULL,
    platform  text             NOT NULL,   -- '' for events without a platform
    shard     smallint         NOT NULL,
    count     bigint           NOT NULL,
    sum       double precision NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    histogram integer[],                   -- latency/duration names only
    PRIMARY KEY (hour, name, platform, shard)
);

COMMENT ON TABLE metric_rollups IS 'Hourly per-name, per-platform aggregates of metric_events (sum over shard)';

-- Bucket of a value: 0 for ≤ 1 ms, else ceil(log_1.1(value / 1 ms)), at most 159.
CREATE FUNCTION tocsin_histogram_bucket(v double precision) RETURNS integer
IMMUTABLE LANGUAGE sql AS $$
    SELECT CASE WHEN v <= 0.001 THEN 0 ELSE least(159, ceil(ln(v / 0.001) / ln(1.1))::integer) END
$$;

CREATE FUNCTION tocsin_histogram_add(a integer[], b integer[]) RETURNS integer[]
IMMUTABLE LANGUAGE sql AS $$
    SELECT CASE
        WHEN a IS NULL THEN b
        WHEN b IS NULL THEN a
        ELSE (SELECT array_agg(coalesce(x, 0) + coalesce(y, 0) ORDER BY i)
              FROM unnest(a, b) WITH ORDINALITY AS t(x, y, i))
    END
$$;

CREATE AGGREGATE tocsin_histogram_sum(integer[]) (SFUNC = tocsin_histogram_add, STYPE = integer[]);

-- A histogram from bucket numbers and their counts.
CREATE FUNCTION tocsin_histogram_from(buckets integer[], counts bigint[]) RETURNS integer[]
IMMUTABLE LANGUAGE sql AS $$
    SELECT array_agg(coalesce(t.c, 0)::integer ORDER BY g)
    FROM generate_series(0, 159) g
    LEFT JOIN (SELECT b, sum(n) AS c FROM unnest(buckets, counts) AS u(b, n) GROUP BY b) t ON t.b = g
$$;

-- Recomputes the rollups of [from_time, to_time) (whole hours) from the
-- events. Returns the rollup rows written.
CREATE FUNCTION tocsin_rebuild_rollups(from_time timestamptz, to_time timestamptz) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    written bigint;
BEGIN
    DELETE FROM metric_rollups WHERE hour >= date_trunc('hour', from_time) AND hour < to_time;
    INSERT INTO metric_rollups (hour, name, platform, shard, count, sum, min, max, histogram)
    SELECT hour, name, platform, 0, sum(n)::bigint, sum(s), min(lo), max(hi),
           CASE WHEN name ~ '(^|\.)(latency|duration)$' THEN tocsin_histogram_from(array_agg(bucket), array_agg(n)) END
    FROM (
        SELECT date_trunc('hour', occurred_at) AS hour, name, coalesce(platform, '') AS platform,
               tocsin_histogram_bucket(value) AS bucket, count(*) AS n, sum(value) AS s, min(value) AS lo, max(value) AS hi
        FROM metric_events
        WHERE occurred_at >= date_trunc('hour', from_time) AND occurred_at < to_time
        GROUP BY 1, 2, 3, 4
    ) buckets
    GROUP BY hour, name, platform;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;

SELECT tocsin_rebuild_rollups('-infinity', 'infinity');
