-- A firing post of an external alert whose episode its sender has already
-- ended (startsAt before the endsAt of the last alert of its fingerprint,
-- resolved by a post) does not open a new alert: it is the late word of
-- another member of an HA pair of Prometheus servers. That check reads the
-- last resolved alert of a fingerprint.
CREATE INDEX alerts_external_resolved ON alerts (fingerprint, resolved_at DESC)
    WHERE source = 'external' AND status = 'resolved';
