/**
 * Decisions about the API's data that need no DOM: how alerts sort, which
 * note an alert shows, how a rule's value reads, which rule's threshold a
 * chart draws, the metric groups of a summary and when a value is bad, when
 * a summary is empty, and which platform names are new.
 */

import { CHARTS } from './charts.js';
import { PLATFORM_RE, SEVERITY_COLOR, SEVERITY_RANK, STATUS_RANK } from './config.js';
import { fmtInt, fmtNumber, fmtPercent, fmtSeconds, isNum, parseTime } from './format.js';

// -------------------------------------------------------------------- alerts

/** Firing before pending before acknowledged; then the most severe; then the newest. */
export function compareAlerts(a, b) {
  return (STATUS_RANK[a.status] ?? 9) - (STATUS_RANK[b.status] ?? 9)
    || (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9)
    || (parseTime(b.started_at) || 0) - (parseTime(a.started_at) || 0)
    || b.id - a.id;
}

/** A non-empty note, or null. The API sends `acknowledge_note` and `resolve_note`. */
export function noteText(value) {
  return typeof value === 'string' && value.trim() ? value.trim() : null;
}

/** The note an open alert shows: the one given when it was acknowledged. */
export function alertNote(alert) {
  return noteText(alert.acknowledge_note) || noteText(alert.note);
}

/** Both notes of a history row, labelled when there are two. */
export function historyNote(alert) {
  const ack = noteText(alert.acknowledge_note);
  const resolve = noteText(alert.resolve_note);
  if (ack && resolve) return `Acknowledged: ${ack} · Resolved: ${resolve}`;
  return ack || resolve || noteText(alert.note);
}

/** How a resolved alert ended: "manually by ann", "no data", "recovered"… */
export function resolutionText(alert) {
  if (alert.resolution === 'manual') return `manually${alert.resolved_by ? ` by ${alert.resolved_by}` : ''}`;
  if (alert.resolution === 'no_data') return 'no data';
  if (alert.resolution === 'expired') return 'not re-posted by its sender';
  return alert.resolution || 'resolved';
}

/** An alert posted to /api/v2/alerts (Prometheus, Grafana, amtool) rather than evaluated from a rule. */
export function isExternal(alert) {
  return Boolean(alert && alert.source === 'external');
}

/** An external alert's labels but its alertname (shown as its rule): "instance=db1, team=ops". */
export function externalLabelsText(alert) {
  const labels = (alert && alert.labels) || {};
  return Object.keys(labels).filter((k) => k !== 'alertname').sort()
    .map((k) => `${k}=${labels[k]}`).join(', ');
}

/** Alertmanager matchers as amtool writes them: alertname="x", instance=~"db.*", env!="dev". */
export function matchersText(matchers) {
  if (!Array.isArray(matchers)) return '';
  return matchers.map((m) => {
    const op = (m.isEqual === false ? '!' : '=') + (m.isRegex ? '~' : (m.isEqual === false ? '=' : ''));
    return `${m.name}${op}${JSON.stringify(String(m.value ?? ''))}`;
  }).join(', ');
}

/** The answer of GET/POST /monitoring/session has the fields the page uses. */
export function validSession(data) {
  return Boolean(data && typeof data === 'object' && typeof data.name === 'string' && Array.isArray(data.scopes));
}

/** The session may acknowledge, resolve, retry and run checks. */
export function hasAdminScope(session) {
  return Boolean(session && Array.isArray(session.scopes) && session.scopes.includes('admin'));
}

// --------------------------------------------------------------------- rules

export function ruleByName(rules, name) {
  return (rules || []).find((r) => r.name === name) || null;
}

/** How a rule's value reads: a ratio (→ %), seconds, or a plain number. */
export function valueKind(ruleName, rules) {
  const rule = ruleByName(rules, ruleName);
  const text = `${ruleName || ''} ${(rule && rule.description) || ''}`.toLowerCase();
  if ((rule && rule.kind === 'ratio') || /error_rate|ratio|success_rate/.test(ruleName || '')) return 'ratio';
  if (/latency|duration/.test(text)) return 'seconds';
  return 'number';
}

export function fmtRuleValue(ruleName, value, rules) {
  switch (valueKind(ruleName, rules)) {
    case 'ratio': return fmtPercent(value);
    case 'seconds': return fmtSeconds(value);
    default: return fmtNumber(value);
  }
}

/**
 * The rule whose threshold a chart draws. GET /api/rules does not say which
 * metric a rule reads, so this matches on the name and description (and on
 * metric fields, should the server add them).
 */
export function chartRule(which, rules) {
  const usable = (rules || []).filter((r) => r.enabled !== false && isNum(r.threshold));
  const text = (r) => [r.name, r.description, r.metric, r.name_filter, r.numerator]
    .filter((x) => typeof x === 'string').join(' ').toLowerCase();
  if (which === 'upload') {
    return usable.find((r) => r.kind === 'ratio' && text(r).includes('upload'))
      || usable.find((r) => r.kind === 'ratio' && /error_rate/.test(r.name)) || null;
  }
  return usable.find((r) => text(r).includes('webhook') && text(r).includes('latency')) || null;
}

/** The threshold a chart (and its stat card) compares with: { value, severity, rule }. */
export function thresholdFor(which, rules) {
  const rule = chartRule(which, rules);
  const chart = CHARTS[which];
  return {
    value: rule ? rule.threshold : chart.fallbackThreshold,
    severity: rule && SEVERITY_COLOR[rule.severity] ? rule.severity : chart.fallbackSeverity,
    rule,
  };
}

// ------------------------------------------------------------------ summary

const int = (v) => fmtInt(v);

/** The groups of a summary entry, each [key, title, [[field, label, format], …]]. */
export const GROUPS = [
  ['oauth', 'OAuth', [['success', 'Success', int], ['failure', 'Failure', int], ['success_rate', 'Success rate', fmtPercent]]],
  ['upload', 'Upload', [['success', 'Success', int], ['failure', 'Failure', int], ['success_rate', 'Success rate', fmtPercent]]],
  ['webhook', 'Webhook', [['received', 'Received', int], ['processed', 'Processed', int],
    ['avg_latency_s', 'Avg latency', fmtSeconds], ['p95_latency_s', 'p95 latency', fmtSeconds]]],
  ['token_refresh', 'Token refresh', [['success', 'Success', int], ['failure', 'Failure', int]]],
  ['api', 'API', [['calls', 'Calls', int], ['avg_latency_s', 'Avg latency', fmtSeconds], ['p95_latency_s', 'p95 latency', fmtSeconds]]],
  ['worker', 'Worker', [['runs', 'Runs', int], ['avg_duration_s', 'Avg duration', fmtSeconds]]],
];

/** Upload success below (1 − the error-rate threshold), or webhook latency above its threshold. */
export function isBadMetric(group, field, value, rules) {
  if (!isNum(value)) return false;
  if (group === 'upload' && field === 'success_rate') return 1 - value > thresholdFor('upload', rules).value;
  if (group === 'webhook' && field === 'avg_latency_s') return value > thresholdFor('webhook', rules).value;
  return false;
}

/** Every count of the totals is 0 (rates, latencies and durations do not count); false without totals. */
export function totalsAreZero(totals) {
  if (!totals) return false;
  for (const [key, group] of Object.entries(totals)) {
    if (key === 'platform' || !group || typeof group !== 'object') continue;
    for (const [field, value] of Object.entries(group)) {
      if (isNum(value) && value !== 0 && !/rate|latency|duration/.test(field)) return false;
    }
  }
  return true;
}

/** The valid platform names of `list` not in `known` (a Set), each once, in order. */
export function newPlatforms(list, known) {
  const added = [];
  for (const p of list) {
    if (typeof p === 'string' && PLATFORM_RE.test(p) && !known.has(p) && !added.includes(p)) added.push(p);
  }
  return added;
}
