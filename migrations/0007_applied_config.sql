-- Applied configuration. `tocsin rules apply FILE`, `tocsin notify apply
-- FILE` (and `tocsin run` at start) write a new numbered version whenever
-- what they apply differs from the current one: who, when, from where, a
-- readable diff, and the whole document. Workers and API processes read the
-- latest version; nothing is loaded from files by them any more. Secrets are
-- never part of a document: channels name the environment variable (or the
-- applying process) that holds each one.
CREATE TABLE config_versions (
    kind        text        NOT NULL CHECK (kind IN ('rules', 'notify')),
    version     integer     NOT NULL CHECK (version > 0),
    applied_at  timestamptz NOT NULL DEFAULT now(),
    applied_by  text        NOT NULL,
    source      text        NOT NULL,
    checksum    text        NOT NULL CHECK (checksum ~ '^[0-9a-f]{64}$'),
    diff        jsonb       NOT NULL,
    document    jsonb       NOT NULL,
    PRIMARY KEY (kind, version)
);

COMMENT ON TABLE config_versions IS 'Every applied version of the rules and of the notification channels and routes';
COMMENT ON COLUMN config_versions.diff IS 'JSON array of lines: "+ rule x", "- channel y", "~ rule z: field old → new"';

-- The rules version that last changed each rule.
ALTER TABLE alert_rules ADD COLUMN version integer;

-- Every stored status and outcome is one of the values the code knows (the
-- enums of TocsinCore's Statuses.swift; a test compares the two lists).
ALTER TABLE alert_events
    ADD CONSTRAINT alert_events_from_status_check
        CHECK (from_status IN ('pending', 'firing', 'acknowledged', 'resolved')),
    ADD CONSTRAINT alert_events_to_status_check
        CHECK (to_status IN ('pending', 'firing', 'acknowledged', 'resolved')),
    ADD CONSTRAINT alert_events_resolution_check
        CHECK (resolution IN ('auto', 'manual', 'no_data'));
ALTER TABLE rule_evaluations
    ADD CONSTRAINT rule_evaluations_outcome_check
        CHECK (outcome IN ('ok', 'pending', 'firing', 'acknowledged', 'resolved', 'no_data')),
    ADD CONSTRAINT rule_evaluations_trigger_check
        CHECK (trigger IN ('schedule', 'event', 'manual'));

-- A partition must carry every CHECK constraint of its table to be
-- attached: new daily partitions copy them.
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
        -- happens once a day per table and lasts milliseconds; the lock
        -- timeout keeps a long-running query from stalling everyone behind
        -- it (the worker retries at its next maintenance round).
        PERFORM set_config('lock_timeout', '5s', true);
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
