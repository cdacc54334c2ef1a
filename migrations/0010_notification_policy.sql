-- Notification policy: grouping, inhibition, time intervals, escalation and
-- the delivery ledger. Routes without group_by keep one outbox row per
-- alert transition and channel, as before.

-- A group's message is an outbox row without a single alert: group_id and
-- the group's update number (sequence) are its unique key. Rows say which
-- route decided them, and what holds them.
ALTER TABLE notifications ALTER COLUMN alert_id DROP NOT NULL;
ALTER TABLE notifications
    ADD COLUMN group_id         bigint,
    ADD COLUMN route            text,
    ADD COLUMN inhibited_by     bigint,
    ADD COLUMN muted_by         text,
    ADD COLUMN escalation_level integer CHECK (escalation_level > 0);
ALTER TABLE notifications DROP CONSTRAINT notifications_transition_check;
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications
    ADD CONSTRAINT notifications_transition_check
        CHECK (transition IN ('fired', 'resolved', 'repeat', 'escalated', 'group')),
    ADD CONSTRAINT notifications_status_check
        CHECK (status IN ('pending', 'sent', 'dead', 'silenced', 'dropped', 'inhibited', 'muted')),
    ADD CONSTRAINT notifications_one_subject CHECK ((alert_id IS NULL) = (group_id IS NOT NULL));
CREATE UNIQUE INDEX notifications_group_update ON notifications (group_id, sequence, channel) WHERE group_id IS NOT NULL;
CREATE INDEX notifications_inhibited ON notifications (id) WHERE status = 'inhibited';
CREATE INDEX notifications_muted ON notifications (id) WHERE status = 'muted';
COMMENT ON COLUMN notifications.group_id IS 'The notification group of a group message (transition group); NULL for one alert''s message';
COMMENT ON COLUMN notifications.route IS 'The route whose policy decided the row: its name, or "route #N"';

-- Alert groups of routes with group_by, per channel: the group's labels and
-- when its next message is due. A group's message is built by whichever
-- worker locks the row when it is due (FOR UPDATE SKIP LOCKED), as update
-- number sequence + 1: exactly one message per update across workers.
CREATE TABLE notification_groups (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route         text        NOT NULL,
    channel       text        NOT NULL,
    group_key     text        NOT NULL,
    labels        jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    next_flush_at timestamptz,
    last_flush_at timestamptz,
    sequence      integer     NOT NULL DEFAULT 0,
    muted_by      text,
    UNIQUE (route, channel, group_key)
);
CREATE INDEX notification_groups_due ON notification_groups (next_flush_at) WHERE next_flush_at IS NOT NULL;

-- The alerts of each group: their state as of the last change, and as of
-- the last message that told it (notified_state); a change is what differs.
CREATE TABLE notification_group_alerts (
    group_id       bigint      NOT NULL REFERENCES notification_groups (id) ON DELETE CASCADE,
    alert_id       bigint      NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    state          text        NOT NULL CHECK (state IN ('firing', 'resolved')),
    notified_state text        CHECK (notified_state IN ('firing', 'resolved')),
    -- Why a change is not told yet (an inhibit rule, a silence).
    held_by        text,
    changed_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, alert_id)
);
CREATE INDEX notification_group_alerts_alert ON notification_group_alerts (alert_id);

-- Which alerts a group message told of.
CREATE TABLE notification_alerts (
    notification_id bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    alert_id        bigint NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    PRIMARY KEY (notification_id, alert_id)
);
CREATE INDEX notification_alerts_alert ON notification_alerts (alert_id);

-- Escalations are transitions of the alert, one per level.
ALTER TABLE alert_events ADD COLUMN escalation_level integer CHECK (escalation_level > 0);
ALTER TABLE alert_events DROP CONSTRAINT alert_events_transition_check;
ALTER TABLE alert_events
    ADD CONSTRAINT alert_events_transition_check
        CHECK (transition IN ('pending', 'fired', 'acknowledged', 'resolved', 'escalated'));
CREATE UNIQUE INDEX alert_events_one_escalation ON alert_events (alert_id, escalation_level) WHERE transition = 'escalated';

-- A silence may recur: it holds only while now() is also inside its
-- recurrence (weekdays, times, days of month, months, years, time zone).
ALTER TABLE silences ADD COLUMN recurrence jsonb;
COMMENT ON COLUMN silences.recurrence IS 'NULL, or the recurring window inside starts_at … ends_at (see docs/notifications.md)';

-- The delivery ledger: for every alert, route and channel, what happened
-- and why. Written in the transactions that decide (routing, grouping,
-- holds, releases, sends), so it never says more than happened.
CREATE TABLE delivery_ledger (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alert_id         bigint      NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    notification_id  bigint,
    route            text,
    channel          text        NOT NULL,
    event            text        NOT NULL CHECK (event IN ('routed', 'grouped', 'inhibited', 'silenced', 'muted', 'rate_limited', 'released', 'repeated', 'escalated', 'sent', 'retried', 'dead', 'dropped')),
    transition       text,
    inhibited_by     bigint,
    silence_id       bigint,
    time_interval    text,
    until            timestamptz,
    escalation_level integer,
    status_code      integer,
    detail           text,
    at               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX delivery_ledger_alert ON delivery_ledger (alert_id, id);
CREATE INDEX delivery_ledger_notification ON delivery_ledger (notification_id);
CREATE INDEX delivery_ledger_first_sent ON delivery_ledger (channel, alert_id, at) WHERE event = 'sent';
