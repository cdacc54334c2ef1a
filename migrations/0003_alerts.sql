-- Alert rules, as loaded from the rules file (ALERT_RULES_FILE) by workers.
-- A rule removed from the file is disabled, never deleted, so alerts keep
-- their reference.
CREATE TABLE alert_rules (
    id                 integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name               text        NOT NULL UNIQUE,
    description        text        NOT NULL DEFAULT '',
    runbook_url        text,
    kind               text        NOT NULL CHECK (kind IN ('ratio', 'count', 'aggregate')),
    severity           text        NOT NULL CHECK (severity IN ('warning', 'error', 'critical')),
    comparison         text        NOT NULL CHECK (comparison IN ('>', '>=', '<', '<=')),
    threshold          double precision NOT NULL,
    recovery_threshold double precision NOT NULL,
    group_by           text        NOT NULL CHECK (group_by IN ('platform', 'none')),
    interval_seconds   integer     NOT NULL CHECK (interval_seconds > 0),
    metric_names       text[]      NOT NULL,
    labels             jsonb       NOT NULL DEFAULT '{}'::jsonb,
    definition         jsonb       NOT NULL,
    enabled            boolean     NOT NULL DEFAULT true,
    next_due_at        timestamptz NOT NULL DEFAULT now(),
    -- Why next_due_at is what it is: 'schedule' (the next interval) or
    -- 'event' (pulled forward because events arrived for its metrics).
    due_reason         text        NOT NULL DEFAULT 'schedule' CHECK (due_reason IN ('schedule', 'event')),
    last_evaluated_at  timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    disabled_at        timestamptz
);
CREATE INDEX alert_rules_due ON alert_rules (next_due_at) WHERE enabled;
CREATE INDEX alert_rules_metric_names ON alert_rules USING gin (metric_names) WHERE enabled;

-- Alerts: one row per occurrence. At most one open (not resolved) alert per
-- rule and group key, guaranteed by alerts_one_open.
CREATE TABLE alerts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_id          integer     NOT NULL REFERENCES alert_rules (id),
    rule_name        text        NOT NULL,
    severity         text        NOT NULL CHECK (severity IN ('warning', 'error', 'critical')),
    group_key        text        NOT NULL,
    platform         text,
    status           text        NOT NULL CHECK (status IN ('pending', 'firing', 'acknowledged', 'resolved')),
    value            double precision,
    threshold        double precision NOT NULL,
    comparison       text        NOT NULL,
    samples          integer     NOT NULL DEFAULT 0,
    started_at       timestamptz NOT NULL,
    fired_at         timestamptz,
    last_evaluated_at timestamptz NOT NULL DEFAULT now(),
    acknowledged_at  timestamptz,
    acknowledged_by  text,
    acknowledge_note text,
    resolved_at      timestamptz,
    resolved_by      text,
    resolution       text CHECK (resolution IN ('auto', 'manual', 'no_data')),
    resolve_note     text,
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);
CREATE UNIQUE INDEX alerts_one_open ON alerts (rule_id, group_key) WHERE status <> 'resolved';
CREATE INDEX alerts_started ON alerts (started_at DESC, id DESC);
CREATE INDEX alerts_open ON alerts (status) WHERE status <> 'resolved';

-- Every transition of every alert, with the evidence: the value, threshold
-- and sample count at that moment, and who or what made it.
CREATE TABLE alert_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id    bigint      NOT NULL REFERENCES alerts (id),
    rule_id     integer     NOT NULL REFERENCES alert_rules (id),
    transition  text        NOT NULL CHECK (transition IN ('pending', 'fired', 'acknowledged', 'resolved')),
    from_status text,
    to_status   text        NOT NULL,
    value       double precision,
    threshold   double precision NOT NULL,
    samples     integer     NOT NULL DEFAULT 0,
    actor       text        NOT NULL,
    note        text,
    resolution  text,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_events_alert ON alert_events (alert_id, id);
CREATE INDEX alert_events_at ON alert_events (at);

-- One row per rule evaluation and group: the evaluation log. Partitioned by
-- day like metric_events and pruned with the same retention.
CREATE TABLE rule_evaluations (
    id          bigint           NOT NULL GENERATED ALWAYS AS IDENTITY,
    rule_id     integer          NOT NULL,
    rule_name   text             NOT NULL,
    group_key   text,
    value       double precision,
    samples     integer          NOT NULL,
    outcome     text             NOT NULL,
    trigger     text             NOT NULL,
    worker_id   text             NOT NULL,
    started_at  timestamptz      NOT NULL,
    duration_ms double precision NOT NULL
) PARTITION BY RANGE (started_at);
CREATE TABLE rule_evaluations_default PARTITION OF rule_evaluations DEFAULT;
CREATE INDEX rule_evaluations_rule ON rule_evaluations (rule_id, started_at);

-- Worker instances and their heartbeats.
CREATE TABLE workers (
    id                     text PRIMARY KEY,
    host                   text        NOT NULL,
    pid                    integer     NOT NULL,
    roles                  text[]      NOT NULL,
    started_at             timestamptz NOT NULL DEFAULT now(),
    last_heartbeat         timestamptz NOT NULL DEFAULT now(),
    last_check_at          timestamptz,
    last_check_duration_ms double precision,
    evaluations            bigint      NOT NULL DEFAULT 0,
    alerts_fired           bigint      NOT NULL DEFAULT 0,
    stopped_at             timestamptz
);

-- "Run checks now" requests from the API, claimed by exactly one worker
-- (or, when none answers, by the API process itself).
CREATE TABLE check_requests (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule_name    text,
    requested_by text        NOT NULL,
    requested_at timestamptz NOT NULL DEFAULT now(),
    claimed_by   text,
    claimed_at   timestamptz,
    completed_at timestamptz,
    results      jsonb,
    error        text
);
CREATE INDEX check_requests_unclaimed ON check_requests (id) WHERE claimed_by IS NULL;
