// Unit tests of Sources/TocsinAPI/Dashboard/model.js: alert order and notes,
// rule value formats and thresholds, summary groups, empty totals, platforms.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  GROUPS, alertNote, chartRule, compareAlerts, fmtRuleValue, hasAdminScope, historyNote, isBadMetric, newPlatforms,
  noteText, resolutionText, thresholdFor, totalsAreZero, validSession, valueKind, externalLabelsText, isExternal,
  matchersText,
} from '../../Sources/TocsinAPI/Dashboard/model.js';

// As GET /api/rules returns rules/default.yaml.
const RULES = [
  { name: 'high_error_rate', description: 'Upload failure rate above 5 % with at least 10 upload attempts in the last 15 minutes',
    severity: 'error', kind: 'ratio', threshold: 0.05, enabled: true },
  { name: 'token_refresh_failures', description: 'More than 3 token refresh failures in the last 15 minutes',
    severity: 'critical', kind: 'count', threshold: 3, enabled: true },
  { name: 'high_webhook_latency', description: 'Average latency of the last 50 webhooks above 5 seconds',
    severity: 'warning', kind: 'aggregate', threshold: 5, enabled: true },
];

test('compareAlerts: firing, pending, acknowledged; then severity; then newest; then highest id', () => {
  const a = (id, status, severity, started) => ({ id, status, severity, started_at: started });
  const alerts = [
    a(1, 'acknowledged', 'critical', '2026-12-01T10:00:00Z'),
    a(2, 'pending', 'warning', '2026-12-01T10:00:00Z'),
    a(3, 'firing', 'error', '2026-12-01T10:00:00Z'),
    a(4, 'firing', 'critical', '2026-12-01T09:00:00Z'),
    a(5, 'firing', 'error', '2026-12-01T11:00:00Z'),
    a(6, 'firing', 'error', '2026-12-01T11:00:00Z'),
    a(7, 'weird', 'critical', '2026-12-01T12:00:00Z'),
    a(8, 'firing', 'unknown', null),
  ];
  assert.deepEqual([...alerts].sort(compareAlerts).map((x) => x.id), [4, 6, 5, 3, 8, 2, 1, 7]);
});

test('noteText, alertNote and historyNote: trimmed, non-empty notes only', () => {
  assert.equal(noteText('  looking  '), 'looking');
  for (const none of ['', '   ', null, undefined, 5, {}]) assert.equal(noteText(none), null);
  assert.equal(alertNote({ acknowledge_note: ' ack ', note: 'old' }), 'ack');
  assert.equal(alertNote({ acknowledge_note: ' ', note: 'old' }), 'old');
  assert.equal(alertNote({}), null);
  assert.equal(historyNote({ acknowledge_note: 'a', resolve_note: 'r' }), 'Acknowledged: a · Resolved: r');
  assert.equal(historyNote({ resolve_note: 'r' }), 'r');
  assert.equal(historyNote({ acknowledge_note: 'a', resolve_note: '  ' }), 'a');
  assert.equal(historyNote({ note: 'n' }), 'n');
  assert.equal(historyNote({}), null);
});

test('resolutionText: manual (by whom), no data, or what the server said', () => {
  assert.equal(resolutionText({ resolution: 'manual', resolved_by: 'ann' }), 'manually by ann');
  assert.equal(resolutionText({ resolution: 'manual' }), 'manually');
  assert.equal(resolutionText({ resolution: 'no_data' }), 'no data');
  assert.equal(resolutionText({ resolution: 'recovered' }), 'recovered');
  assert.equal(resolutionText({}), 'resolved');
});

test('validSession and hasAdminScope', () => {
  assert.equal(validSession({ name: 'e2e', scopes: ['read'] }), true);
  assert.equal(validSession({ name: 'e2e', scopes: [] }), true);
  for (const bad of [null, undefined, 'e2e', {}, { name: 'x' }, { scopes: [] }, { name: 1, scopes: [] }, { name: 'x', scopes: 'admin' }]) {
    assert.equal(validSession(bad), false, JSON.stringify(bad));
  }
  assert.equal(hasAdminScope({ scopes: ['read', 'admin'] }), true);
  assert.equal(hasAdminScope({ scopes: ['read'] }), false);
  assert.equal(hasAdminScope({ scopes: 'admin' }), false);
  assert.equal(hasAdminScope(null), false);
});

test('valueKind and fmtRuleValue: ratios as %, latencies and durations in seconds, counts as numbers', () => {
  assert.equal(valueKind('high_error_rate', RULES), 'ratio');
  assert.equal(valueKind('high_error_rate', null), 'ratio', 'by name, without rules');
  assert.equal(valueKind('custom', [{ name: 'custom', kind: 'ratio' }]), 'ratio');
  assert.equal(valueKind('high_webhook_latency', RULES), 'seconds');
  assert.equal(valueKind('slow', [{ name: 'slow', description: 'Worker duration above 2 s' }]), 'seconds');
  assert.equal(valueKind('token_refresh_failures', RULES), 'number');
  assert.equal(valueKind(null, RULES), 'number');
  assert.equal(fmtRuleValue('high_error_rate', 0.1, RULES), '10.0%');
  assert.equal(fmtRuleValue('high_error_rate', 0.05, RULES), '5.0%');
  assert.equal(fmtRuleValue('high_webhook_latency', 6.5, RULES), '6.50 s');
  assert.equal(fmtRuleValue('token_refresh_failures', 7, RULES), '7');
  assert.equal(fmtRuleValue('token_refresh_failures', null, RULES), '—');
});

test('chartRule and thresholdFor: the matching enabled rule, else the chart\'s fallback', () => {
  assert.equal(chartRule('upload', RULES).name, 'high_error_rate');
  assert.equal(chartRule('webhook', RULES).name, 'high_webhook_latency');
  assert.deepEqual(thresholdFor('upload', RULES), { value: 0.05, severity: 'error', rule: RULES[0] });
  assert.deepEqual(thresholdFor('webhook', RULES), { value: 5, severity: 'warning', rule: RULES[2] });
  for (const none of [null, undefined, []]) {
    assert.deepEqual(thresholdFor('upload', none), { value: 0.05, severity: 'error', rule: null });
    assert.deepEqual(thresholdFor('webhook', none), { value: 5, severity: 'warning', rule: null });
  }
  const disabled = RULES.map((r) => ({ ...r, enabled: false }));
  assert.equal(chartRule('upload', disabled), null);
  assert.equal(chartRule('webhook', [{ ...RULES[2], threshold: '5' }]), null, 'a threshold that is not a number');
  assert.deepEqual(thresholdFor('webhook', [{ ...RULES[2], threshold: 2, severity: 'bogus' }]).severity, 'warning');
  assert.equal(chartRule('upload', [{ name: 'signup_error_rate', kind: 'ratio', threshold: 0.1 }]).name, 'signup_error_rate',
    'any error_rate ratio rule when none mentions uploads');
});

test('GROUPS: the summary fields and their formats', () => {
  assert.deepEqual(GROUPS.map(([key]) => key), ['oauth', 'upload', 'webhook', 'token_refresh', 'api', 'worker']);
  assert.equal(GROUPS.reduce((n, [, , fields]) => n + fields.length, 0), 17);
  const format = (group, field) => GROUPS.find(([k]) => k === group)[2].find(([f]) => f === field)[2];
  assert.equal(format('upload', 'success_rate')(0.9), '90.0%');
  assert.equal(format('webhook', 'p95_latency_s')(2.38), '2.38 s');
  assert.equal(format('oauth', 'failure')(1234), '1,234');
  assert.equal(format('worker', 'runs')(undefined), '—');
});

test('isBadMetric: upload success under 1 − threshold, webhook latency over its threshold', () => {
  assert.equal(isBadMetric('upload', 'success_rate', 0.9, RULES), true);
  assert.equal(isBadMetric('upload', 'success_rate', 0.98, RULES), false);
  assert.equal(isBadMetric('upload', 'success_rate', 0, null), true);
  assert.equal(isBadMetric('upload', 'success_rate', 1, null), false);
  assert.equal(isBadMetric('webhook', 'avg_latency_s', 6, RULES), true);
  assert.equal(isBadMetric('webhook', 'avg_latency_s', 5, RULES), false, 'at the threshold is not over it');
  assert.equal(isBadMetric('webhook', 'avg_latency_s', null, RULES), false);
  assert.equal(isBadMetric('webhook', 'p95_latency_s', 60, RULES), false);
  assert.equal(isBadMetric('oauth', 'success_rate', 0, RULES), false);
});

test('totalsAreZero: no counts at all (rates and latencies do not count)', () => {
  assert.equal(totalsAreZero(null), false);
  assert.equal(totalsAreZero(undefined), false);
  assert.equal(totalsAreZero({}), true);
  assert.equal(totalsAreZero({ platform: 'tiktok', upload: { success: 0, failure: 0, success_rate: null } }), true);
  assert.equal(totalsAreZero({ upload: { success: 0, success_rate: 0.5 }, webhook: { avg_latency_s: 3 }, worker: { avg_duration_s: 1 } }), true);
  assert.equal(totalsAreZero({ upload: { success: 0 }, oauth: { failure: 1 } }), false);
  assert.equal(totalsAreZero({ api: { calls: -1 } }), false);
  assert.equal(totalsAreZero({ upload: null, extra: 5, note: 'x', oauth: { failure: '3' } }), true, 'not objects, not numbers');
});

test('newPlatforms: valid names not yet known, once each, in order', () => {
  const known = new Set(['tiktok', 'instagram']);
  assert.deepEqual(newPlatforms(['tiktok', 'youtube', 'youtube', null, 'Bad', 'x_y-1', 7, '', 'instagram'], known), ['youtube', 'x_y-1']);
  assert.deepEqual(newPlatforms([], known), []);
  assert.equal(known.size, 2, 'the known set is left alone');
});

test('external alerts: recognised by source, shown by their labels but alertname', () => {
  const alert = { source: 'external', rule: 'DiskFull', labels: { alertname: 'DiskFull', team: 'db', instance: 'db1' } };
  assert.equal(isExternal(alert), true);
  assert.equal(isExternal({ source: 'rule' }), false);
  assert.equal(isExternal(null), false);
  assert.equal(externalLabelsText(alert), 'instance=db1, team=db');
  assert.equal(externalLabelsText({ labels: { alertname: 'X' } }), '');
  assert.equal(resolutionText({ resolution: 'expired' }), 'not re-posted by its sender');
});

test('matchersText writes Alertmanager matchers as amtool does', () => {
  assert.equal(matchersText([
    { name: 'alertname', value: 'DiskFull', isRegex: false, isEqual: true },
    { name: 'instance', value: 'db.*', isRegex: true },
    { name: 'env', value: 'dev', isRegex: false, isEqual: false },
    { name: 'job', value: 'a"b', isRegex: true, isEqual: false },
  ]), 'alertname="DiskFull", instance=~"db.*", env!="dev", job!~"a\\"b"');
  assert.equal(matchersText([]), '');
  assert.equal(matchersText(undefined), '');
});
