-- A rule whose evaluation fails backs off instead of being retried at once:
-- the failure is recorded here (by a statement of its own, as the failed
-- evaluation's transaction rolled back) and the due time moves 1, 2, 4 …
-- seconds ahead, at most one interval. A successful evaluation sets
-- consecutive_errors back to 0 and keeps the last error for reference.
ALTER TABLE alert_rules
    ADD COLUMN consecutive_errors integer NOT NULL DEFAULT 0 CHECK (consecutive_errors >= 0),
    ADD COLUMN last_error         text,
    ADD COLUMN last_error_at      timestamptz;

COMMENT ON COLUMN alert_rules.consecutive_errors IS 'Evaluations that failed in a row; 0 when the last one succeeded';
COMMENT ON COLUMN alert_rules.last_error IS 'The message of the last failed evaluation (SQLSTATE and primary message, no data)';

-- The evaluation log records failures too.
ALTER TABLE rule_evaluations ADD COLUMN error text;
ALTER TABLE rule_evaluations DROP CONSTRAINT rule_evaluations_outcome_check;
ALTER TABLE rule_evaluations
    ADD CONSTRAINT rule_evaluations_outcome_check
        CHECK (outcome IN ('ok', 'pending', 'firing', 'acknowledged', 'resolved', 'no_data', 'error'));

-- The labels that identify an alert within its rule (its group): today
-- {"platform": "…"} for rules grouped by platform, {} for the others. Routing,
-- silences and messages match on them.
ALTER TABLE alerts ADD COLUMN labels jsonb NOT NULL DEFAULT '{}'::jsonb;
UPDATE alerts SET labels = jsonb_build_object('platform', platform) WHERE platform IS NOT NULL;
COMMENT ON COLUMN alerts.labels IS 'The group''s labels (JSON object of strings), e.g. {"platform": "tiktok"}';

-- Retention deletes resolved alerts (with their transitions and
-- notifications) and finished notifications in small batches, oldest first.
CREATE INDEX alerts_resolved_at ON alerts (resolved_at) WHERE status = 'resolved';
CREATE INDEX notifications_finished ON notifications (updated_at) WHERE status IN ('sent', 'dead', 'dropped');

-- Partition maintenance takes its lock timeout from the caller (a short
-- one: a queued ACCESS EXCLUSIVE request would hold up every insert behind
-- it), instead of the 5 s that 0007 set.
CREATE OR REPLACE FUNCTION tocsin_ensure_partitions(parent text, time_column text, from_day date, to_day date) RETURNS integer
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
        -- happens once a day per table and lasts milliseconds.
        EXECUTE format('LOCK TABLE %I IN ACCESS EXCLUSIVE MODE', parent);
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part, parent);
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

-- Drops at most one partition older than cutoff_day per call (the caller
-- commits between calls, so each ACCESS EXCLUSIVE lock is held for one drop
-- only) and returns its name, or NULL when none is left. DETACH … CONCURRENTLY
-- would take a weaker lock, but PostgreSQL refuses it on a table with a
-- default partition, which these tables keep for rows of a day whose
-- partition does not exist yet.
CREATE FUNCTION tocsin_drop_one_partition(parent text, cutoff_day date) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    part text;
BEGIN
    SELECT c.relname INTO part
    FROM pg_inherits i
    JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = parent::regclass
      AND c.relname ~ ('^' || parent || '_p[0-9]{8}$')
      AND to_date(right(c.relname, 8), 'YYYYMMDD') < cutoff_day
    ORDER BY c.relname
    LIMIT 1;
    IF part IS NULL THEN
        RETURN NULL;
    END IF;
    EXECUTE format('DROP TABLE %I', part);
    RETURN part;
END;
$$;

-- Replaced by tocsin_drop_one_partition (and a batched delete of the
-- default partition's old rows).
DROP FUNCTION tocsin_drop_partitions(text, text, date);
