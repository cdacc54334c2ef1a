-- Rules that filter and group by event labels, composite rules and SLO
-- burn-rate rules.

-- Two new kinds; group_by is 'none' or the group keys (platform and label
-- names, up to 3) joined by commas.
ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_kind_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_kind_check CHECK (kind IN ('ratio', 'count', 'aggregate', 'composite', 'slo'));
ALTER TABLE alert_rules DROP CONSTRAINT alert_rules_group_by_check;
ALTER TABLE alert_rules ADD CONSTRAINT alert_rules_group_by_keys
    CHECK (group_by = 'none' OR group_by ~ '^[A-Za-z_][A-Za-z0-9_./-]{0,63}(,[A-Za-z_][A-Za-z0-9_./-]{0,63}){0,2}$');

-- The rules a composite reads: it is evaluated once none of them is due.
ALTER TABLE alert_rules ADD COLUMN input_rules text[] NOT NULL DEFAULT '{}';
COMMENT ON COLUMN alert_rules.input_rules IS 'Composite rules: the names of the rules their expression reads';

-- SLO rules: each group's good and total events over the period (the error
-- budget), recomputed at most every 10 minutes; the burn rates of the
-- windows are counted at every evaluation. NULL until computed, and again
-- when the rule's definition changes.
ALTER TABLE alert_rules ADD COLUMN slo_period_counts jsonb, ADD COLUMN slo_period_counted_at timestamptz;
COMMENT ON COLUMN alert_rules.slo_period_counts IS 'SLO rules: {"<group key>": {"good": n, "total": n}} over the period, as of slo_period_counted_at';

-- Why the last evaluation failed, beside its message.
ALTER TABLE alert_rules ADD COLUMN last_error_code text CHECK (last_error_code IN ('too_many_groups', 'evaluation_failed'));
UPDATE alert_rules SET last_error_code = 'evaluation_failed' WHERE last_error IS NOT NULL;
COMMENT ON COLUMN alert_rules.last_error_code IS 'too_many_groups (more groups than max_groups) or evaluation_failed';

-- What a transition was decided on beyond value, threshold and samples:
-- the filter, the group's labels, a composite's inputs, an SLO's burn rates
-- and error budget. NULL where there is nothing more to say.
ALTER TABLE alert_events ADD COLUMN evidence jsonb;
COMMENT ON COLUMN alert_events.evidence IS 'filter, group labels, composite inputs, SLO burn rates and budget (JSON object)';

-- The same for the evaluation log of SLO and composite rules (NULL for the
-- others, to keep the log small).
ALTER TABLE rule_evaluations ADD COLUMN evidence jsonb;

-- SLO rules read the rollups of their names over up to 31 days (their
-- period): by name and hour, instead of through the primary key, whose
-- leading `hour` makes a 30-day range read every name's rows. No INCLUDE
-- columns, so ingestion's upserts of count, sum, min and max stay HOT.
CREATE INDEX metric_rollups_name_hour ON metric_rollups (name, hour);
