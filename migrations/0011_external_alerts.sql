-- External alerts: posted by Prometheus, Grafana or amtool through the
-- Alertmanager v2 API (POST /api/v2/alerts) and living the same life as
-- rule alerts (transitions, outbox, routing, silences, acknowledgement).
-- An external alert has no rule: its identity is the fingerprint of its
-- label set, and at most one alert per fingerprint is open, as for rule
-- alerts per rule and group.
ALTER TABLE alerts ALTER COLUMN rule_id DROP NOT NULL;
ALTER TABLE alerts
    ADD COLUMN source text NOT NULL DEFAULT 'rule' CHECK (source IN ('rule', 'external')),
    ADD COLUMN fingerprint      text,
    ADD COLUMN annotations      jsonb NOT NULL DEFAULT '{}'::jsonb,
    ADD COLUMN generator_url    text,
    ADD COLUMN ends_at          timestamptz,
    ADD COLUMN last_received_at timestamptz,
    ADD CONSTRAINT alerts_source_rule CHECK ((source = 'rule') = (rule_id IS NOT NULL)),
    ADD CONSTRAINT alerts_external_identity
        CHECK ((source = 'external') = (fingerprint IS NOT NULL AND ends_at IS NOT NULL AND last_received_at IS NOT NULL));
ALTER TABLE alerts DROP CONSTRAINT alerts_resolution_check;
ALTER TABLE alerts
    ADD CONSTRAINT alerts_resolution_check CHECK (resolution IN ('auto', 'manual', 'no_data', 'expired'));
CREATE UNIQUE INDEX alerts_one_open_external ON alerts (fingerprint) WHERE source = 'external' AND status <> 'resolved';
-- The worker that resolves external alerts nobody re-posted reads this.
CREATE INDEX alerts_external_ends ON alerts (ends_at) WHERE source = 'external' AND status <> 'resolved';
CREATE INDEX alerts_source_started ON alerts (source, started_at);
COMMENT ON COLUMN alerts.source IS 'rule (evaluated from alert_rules) or external (posted to /api/v2/alerts)';
COMMENT ON COLUMN alerts.fingerprint IS 'External alerts: Alertmanager''s fingerprint of the label set (16 hex digits)';
COMMENT ON COLUMN alerts.ends_at IS 'External alerts: when the alert resolves unless re-posted (its endsAt, or last_received_at + resolve timeout)';

-- A transition of an external alert has no rule; its evidence is the label
-- set and annotations at that moment.
ALTER TABLE alert_events ALTER COLUMN rule_id DROP NOT NULL;
ALTER TABLE alert_events
    ADD COLUMN labels      jsonb,
    ADD COLUMN annotations jsonb;
ALTER TABLE alert_events DROP CONSTRAINT alert_events_resolution_check;
ALTER TABLE alert_events
    ADD CONSTRAINT alert_events_resolution_check CHECK (resolution IN ('auto', 'manual', 'no_data', 'expired'));

-- Silences made through the Alertmanager API keep its matchers (= != =~ !~)
-- beside Tocsin's own, and the author the client gave beside the key that
-- created them.
ALTER TABLE silences
    ADD COLUMN matchers       jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN created_by_key text;
COMMENT ON COLUMN silences.matchers IS 'Alertmanager matchers: [{"name", "value", "isRegex", "isEqual"}], all must match';

-- The alerts scope: keys for Prometheus, Grafana and amtool to post alerts.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_scopes_check;
ALTER TABLE api_keys
    ADD CONSTRAINT api_keys_scopes_check CHECK (cardinality(scopes) > 0 AND scopes <@ ARRAY['ingest', 'read', 'alerts', 'admin']);
