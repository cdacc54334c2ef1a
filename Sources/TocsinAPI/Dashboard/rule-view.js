/**
 * What the "Alert rules" section (#rules-section) says of each rule of
 * GET /api/rules: its condition, filter, groups, a composite's inputs, an
 * SLO's error budget left, and its health. Pure functions: no DOM.
 */

import { isNum } from './format.js';

/** Seconds as the rules file writes them: 30s, 15m, 4h, 30d. */
export function durationText(seconds) {
  if (!isNum(seconds)) return '';
  if (seconds > 0 && seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds > 0 && seconds % 3600 === 0) return `${seconds / 3600}h`;
  if (seconds > 0 && seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

function quoted(text) {
  return `"${String(text).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/** One `where:` matcher as text: `media = "video"`, `endpoint =~ "/v2/.*"`. */
export function matcherText(m) {
  if (!m || typeof m.label !== 'string') return '';
  if ('equals' in m) return `${m.label} = ${quoted(m.equals)}`;
  if ('not_equals' in m) return `${m.label} != ${quoted(m.not_equals)}`;
  if ('matches' in m) return `${m.label} =~ ${quoted(m.matches)}`;
  if ('not_matches' in m) return `${m.label} !~ ${quoted(m.not_matches)}`;
  if (Array.isArray(m.in)) return `${m.label} in [${m.in.map(quoted).join(', ')}]`;
  if ('present' in m) return m.present ? `${m.label} present` : `${m.label} absent`;
  return m.label;
}

/** The whole filter, or '' when the rule reads every event. */
export function filterText(rule) {
  const where = rule && Array.isArray(rule.where) ? rule.where : [];
  return where.map(matcherText).filter(Boolean).join(', ');
}

/** The group labels, or '' for one group. */
export function groupsText(rule) {
  const keys = rule && Array.isArray(rule.group_by) ? rule.group_by : [];
  return keys.join(', ');
}

function percent(fraction, digits = 1) {
  return `${Number((fraction * 100).toFixed(digits))} %`;
}

/** What the rule measures and when it fires. */
export function conditionText(rule) {
  if (!rule) return '';
  const window = isNum(rule.window_s) ? ` over ${durationText(rule.window_s)}` : '';
  const threshold = `${rule.comparison || '>'} ${rule.threshold}`;
  switch (rule.kind) {
    case 'count':
      return `count(${rule.metric})${window} ${threshold}`;
    case 'ratio':
      return `${(rule.numerator || []).join(' + ')} ÷ ${(rule.denominator || []).join(' + ')}${window} ${threshold}`;
    case 'aggregate': {
      const over = isNum(rule.last) ? ` of the last ${rule.last}` : window;
      return `${rule.function}(${rule.metric})${over} ${threshold}`;
    }
    case 'composite':
      return rule.expression || '';
    case 'slo': {
      const slo = rule.slo || {};
      const rates = (slo.burn_rates || [])
        .map((b) => `${b.severity} ${b.factor}× over ${durationText(b.long_s)} and ${durationText(b.short_s)}`).join('; ');
      return `${percent(slo.objective || 0, 3)} of ${(slo.total || []).join(' + ')} good (${(slo.good || []).join(' + ')}) over ${durationText(slo.period_s)}; burn rates: ${rates}`;
    }
    default:
      return '';
  }
}

/** A composite's inputs, or []. */
export function inputsOf(rule) {
  return rule && rule.kind === 'composite' && Array.isArray(rule.inputs) ? rule.inputs : [];
}

/**
 * An SLO's error budget left, one line per group: `tiktok: 42 % left`, or
 * `overspent by 12 %`; [] for other kinds or before the first evaluation.
 */
export function budgetLines(rule) {
  const budgets = rule && rule.slo && Array.isArray(rule.slo.budgets) ? rule.slo.budgets : [];
  return budgets.filter((b) => b && isNum(b.remaining)).map((b) => {
    const group = b.group_key ? `${b.group_key}: ` : '';
    const text = b.remaining >= 0 ? `${percent(b.remaining)} left` : `overspent by ${percent(-b.remaining)}`;
    return { text: group + text, low: b.remaining < 0.25 };
  });
}

/** ok, or failing with why (too many groups says what the bound is). */
export function healthOf(rule) {
  if (!rule || rule.health !== 'failing') return { state: 'ok', text: 'ok', detail: '' };
  const error = rule.last_error || {};
  if (error.code === 'too_many_groups') {
    return { state: 'failing', text: 'too many groups', detail: `more than ${rule.max_groups} groups: narrow it with where: or group by fewer labels` };
  }
  return { state: 'failing', text: 'failing', detail: error.message || '' };
}
