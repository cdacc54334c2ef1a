-- Metric events pushed by applications, range-partitioned by day (UTC).
-- Partitions are named metric_events_pYYYYMMDD; the worker creates them a few
-- days ahead and drops those older than METRICS_RETENTION_DAYS. An event for
-- a day without a partition lands in metric_events_default, and the worker
-- moves it into the day's partition when it creates it.
CREATE SEQUENCE metric_events_id_seq AS bigint;

CREATE TABLE metric_events (
    id          bigint           NOT NULL DEFAULT nextval('metric_events_id_seq'::regclass),
    occurred_at timestamptz      NOT NULL,
    received_at timestamptz      NOT NULL DEFAULT now(),
    name        text             NOT NULL,
    platform    text,
    value       double precision NOT NULL,
    labels      jsonb            NOT NULL DEFAULT '{}'::jsonb
) PARTITION BY RANGE (occurred_at);

ALTER SEQUENCE metric_events_id_seq OWNED BY metric_events.id;

CREATE TABLE metric_events_default PARTITION OF metric_events DEFAULT;

-- "Events of name N (and platform P) in the last W": an index range scan on
-- (name, occurred_at) that can answer counts and aggregates from the index.
CREATE INDEX metric_events_name_time ON metric_events (name, occurred_at) INCLUDE (platform, value);
-- Newest-first listing with keyset pagination on (occurred_at, id).
CREATE INDEX metric_events_time ON metric_events (occurred_at, id);

COMMENT ON TABLE metric_events IS 'Metric events pushed by applications; partitioned by day on occurred_at (UTC)';
COMMENT ON COLUMN metric_events.id IS 'Unique, increasing in insertion order; tie-breaker for pagination';
COMMENT ON COLUMN metric_events.occurred_at IS 'When the event happened, as sent by the application (default: when received)';
COMMENT ON COLUMN metric_events.received_at IS 'When Tocsin stored the event (database clock)';
COMMENT ON COLUMN metric_events.name IS 'Metric name, e.g. upload.failure or webhook.latency';
COMMENT ON COLUMN metric_events.platform IS 'Lowercase platform label (tiktok, instagram, ...) or NULL';
COMMENT ON COLUMN metric_events.value IS 'The measurement: 1 for counted events, seconds for latencies and durations';
COMMENT ON COLUMN metric_events.labels IS 'Free-form string labels (JSON object of string values)';

-- Daily partitions, for any table partitioned by day on a timestamptz
-- column: <parent>_pYYYYMMDD, plus <parent>_default for rows of days without
-- one. tocsin_ensure_partitions creates the partitions for
-- [from_day, to_day], first moving matching rows out of the default
-- partition; it returns how many it created.
CREATE FUNCTION tocsin_ensure_partitions(parent text, time_column text, from_day date, to_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    day date;
    part text;
    created integer := 0;
BEGIN
    FOR day IN SELECT generate_series(from_day, to_day, interval '1 day')::date LOOP
        part := parent || '_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(part) IS NOT NULL;
        -- Queries planned before the attach would miss the rows moved out of
        -- the default partition, and writers routing to it would fail its
        -- constraint: hold both off until this transaction commits. This
        -- happens once a day per table and lasts milliseconds; the lock
        -- timeout keeps a long-running query from stalling everyone behind
        -- it (the worker retries at its next maintenance round).
        PERFORM set_config('lock_timeout', '5s', true);
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', parent);
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS)', part, parent);
        EXECUTE format(
            'WITH moved AS (DELETE FROM %I WHERE %I >= %L AND %I < %L RETURNING *) INSERT INTO %I SELECT * FROM moved',
            parent || '_default', time_column, (day::timestamp AT TIME ZONE 'UTC'),
            time_column, ((day + 1)::timestamp AT TIME ZONE 'UTC'), part);
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
            parent, part, (day::timestamp AT TIME ZONE 'UTC'), ((day + 1)::timestamp AT TIME ZONE 'UTC'));
        created := created + 1;
    END LOOP;
    RETURN created;
END;
$$;

-- Drops the daily partitions of days before cutoff_day and deletes rows of
-- the default partition older than it. Returns the partitions dropped.
CREATE FUNCTION tocsin_drop_partitions(parent text, time_column text, cutoff_day date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
BEGIN
    FOR part IN
        SELECT c.relname
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = parent::regclass
          AND c.relname ~ ('^' || parent || '_p[0-9]{8}$')
          AND to_date(right(c.relname, 8), 'YYYYMMDD') < cutoff_day
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    EXECUTE format('DELETE FROM %I WHERE %I < %L', parent || '_default', time_column,
                   (cutoff_day::timestamp AT TIME ZONE 'UTC'));
    RETURN dropped;
END;
$$;

-- Answers of POST /api/metrics by Idempotency-Key, kept 24 hours.
CREATE TABLE ingest_idempotency (
    api_key_id   bigint      NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    key          text        NOT NULL,
    request_hash text        NOT NULL,
    accepted     integer     NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX ingest_idempotency_created ON ingest_idempotency (created_at);
