// Unit tests of Sources/TocsinAPI/Dashboard/rule-view.js: what the rule view
// says of filters, groups, composites, SLO budgets and health.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  budgetLines, conditionText, filterText, groupsText, healthOf, inputsOf, matcherText,
} from '../../Sources/TocsinAPI/Dashboard/rule-view.js';

test('matcherText and filterText: every operator, quotes escaped', () => {
  assert.equal(matcherText({ label: 'media', equals: 'video' }), 'media = "video"');
  assert.equal(matcherText({ label: 'reason', not_equals: 'user_cancelled' }), 'reason != "user_cancelled"');
  assert.equal(matcherText({ label: 'endpoint', matches: '/v2/.*' }), 'endpoint =~ "/v2/.*"');
  assert.equal(matcherText({ label: 'endpoint', not_matches: 'a"b\\c' }), 'endpoint !~ "a\\"b\\\\c"');
  assert.equal(matcherText({ label: 'platform', in: ['tiktok', 'instagram'] }), 'platform in ["tiktok", "instagram"]');
  assert.equal(matcherText({ label: 'region', present: false }), 'region absent');
  assert.equal(matcherText({ label: 'region', present: true }), 'region present');
  assert.equal(matcherText(null), '');
  assert.equal(filterText({ where: [{ label: 'media', equals: 'video' }, { label: 'x', present: true }] }), 'media = "video", x present');
  assert.equal(filterText({}), '');
});

test('groupsText and inputsOf', () => {
  assert.equal(groupsText({ group_by: ['platform', 'endpoint'] }), 'platform, endpoint');
  assert.equal(groupsText({ group_by: [] }), '');
  assert.deepEqual(inputsOf({ kind: 'composite', inputs: ['a', 'b'] }), ['a', 'b']);
  assert.deepEqual(inputsOf({ kind: 'count', inputs: [] }), []);
});

test('conditionText per kind', () => {
  assert.equal(conditionText({ kind: 'aggregate', function: 'p95', metric: 'api.latency', window_s: 900, comparison: '>', threshold: 2 }),
    'p95(api.latency) over 15m > 2');
  assert.equal(conditionText({ kind: 'aggregate', function: 'avg', metric: 'webhook.latency', last: 50, window_s: null, comparison: '>', threshold: 5 }),
    'avg(webhook.latency) of the last 50 > 5');
  assert.equal(conditionText({ kind: 'ratio', numerator: ['upload.failure'], denominator: ['upload.success', 'upload.failure'], window_s: 900, comparison: '>', threshold: 0.05 }),
    'upload.failure ÷ upload.success + upload.failure over 15m > 0.05');
  assert.equal(conditionText({ kind: 'composite', expression: 'a and b' }), 'a and b');
  const slo = { kind: 'slo', slo: { objective: 0.995, period_s: 2592000, good: ['upload.success'], total: ['upload.success', 'upload.failure'],
    burn_rates: [{ severity: 'critical', factor: 14.4, long_s: 3600, short_s: 300 }] } };
  assert.equal(conditionText(slo), '99.5 % of upload.success + upload.failure good (upload.success) over 30d; burn rates: critical 14.4× over 1h and 5m');
});

test('budgetLines: per group, overspent budgets, low ones flagged', () => {
  const rule = { kind: 'slo', slo: { budgets: [
    { group_key: 'tiktok', remaining: 0.42 }, { group_key: 'instagram', remaining: -0.125 }, { group_key: '', remaining: 1 },
    { group_key: 'x', remaining: null },
  ] } };
  assert.deepEqual(budgetLines(rule), [
    { text: 'tiktok: 42 % left', low: false }, { text: 'instagram: overspent by 12.5 %', low: true }, { text: '100 % left', low: false },
  ]);
  assert.deepEqual(budgetLines({ kind: 'count', slo: null }), []);
});

test('healthOf: ok, failing with the message, too many groups with the bound', () => {
  assert.deepEqual(healthOf({ health: 'ok' }), { state: 'ok', text: 'ok', detail: '' });
  assert.deepEqual(healthOf({ health: 'failing', last_error: { message: '57014: canceling statement', code: 'evaluation_failed' } }),
    { state: 'failing', text: 'failing', detail: '57014: canceling statement' });
  const groups = healthOf({ health: 'failing', max_groups: 100, last_error: { message: 'too_many_groups: …', code: 'too_many_groups' } });
  assert.equal(groups.text, 'too many groups');
  assert.match(groups.detail, /more than 100 groups/);
});
