-- The notification outbox. The transaction that records an alert transition
-- inserts one row per routed channel; dispatchers claim due rows with
-- FOR UPDATE SKIP LOCKED and a lease, send outside any transaction, then
-- mark them sent. The unique key makes a transition produce at most one
-- message per channel, whatever the number of workers.
CREATE TABLE notifications (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id         bigint      NOT NULL REFERENCES alerts (id),
    alert_event_id   bigint      REFERENCES alert_events (id),
    rule_name        text        NOT NULL,
    transition       text        NOT NULL CHECK (transition IN ('fired', 'resolved', 'repeat')),
    sequence         integer     NOT NULL DEFAULT 0,
    channel          text        NOT NULL,
    channel_kind     text        NOT NULL CHECK (channel_kind IN ('slack', 'webhook', 'pagerduty', 'email')),
    status           text        NOT NULL DEFAULT 'pending'
                     CHECK (status IN ('pending', 'sent', 'dead', 'silenced', 'dropped')),
    content          jsonb       NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_owner      text,
    lease_expires_at timestamptz,
    last_error       text,
    last_status_code integer,
    silence_id       bigint,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz,
    UNIQUE (alert_id, transition, sequence, channel)
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_status ON notifications (status, id);
CREATE INDEX notifications_silenced ON notifications (id) WHERE status = 'silenced';

-- Silences hold notifications of matching alerts between starts_at and
-- ends_at. Matchers: rule, platform, severity, labels (all given must match).
CREATE TABLE silences (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    rule       text,
    platform   text,
    severity   text CHECK (severity IN ('warning', 'error', 'critical')),
    labels     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    comment    text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    deleted_at timestamptz,
    CHECK (ends_at > starts_at)
);
CREATE INDEX silences_active ON silences (ends_at) WHERE deleted_at IS NULL;

-- Token buckets per destination (channel), shared by every dispatcher.
CREATE TABLE notification_rate_limits (
    destination text PRIMARY KEY,
    tokens      double precision NOT NULL,
    updated_at  timestamptz      NOT NULL DEFAULT now()
);
