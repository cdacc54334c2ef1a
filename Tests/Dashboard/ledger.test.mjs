// Unit tests of Sources/TocsinAPI/Dashboard/ledger.js: ledger lines, outcomes,
// recurrences as text, and the body of a new (recurring) silence.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  deliveryOutcome, deliveryText, deliveryWhere, recurrenceText, silenceBody,
} from '../../Sources/TocsinAPI/Dashboard/ledger.js';

const entry = (event, extra = {}) => ({ event, route: 'route #1', channel: 'slack-ops', ...extra });

test('deliveryText: each event says why, with the alert, silence, window, level, status or time it names', () => {
  assert.equal(deliveryText(entry('routed')), 'routed');
  assert.equal(deliveryText(entry('grouped', { notification_id: 9, detail: 'group 3 message 2' })),
    'grouped into message #9 — group 3 message 2');
  assert.equal(deliveryText(entry('inhibited', { inhibited_by: 12, detail: 'inhibit rule crit' })),
    'inhibited by alert #12 — inhibit rule crit');
  assert.equal(deliveryText(entry('silenced', { silence_id: 4 })), 'silenced by silence #4');
  assert.equal(deliveryText(entry('muted', { time_interval: 'deploy-window', detail: 'time interval deploy-window' })),
    'muted by time interval deploy-window');
  assert.equal(deliveryText(entry('escalated', { escalation_level: 2 })), 'escalated to level 2');
  assert.equal(deliveryText(entry('sent', { notification_id: 7, status_code: 200 })), 'sent message #7 (status 200)');
  assert.equal(deliveryText(entry('rate_limited', { until: 'T' }), (t) => `at ${t}`), 'held by the rate limit until at T');
  assert.equal(deliveryText(entry('retried', { status_code: 503, until: 'T', detail: 'HTTP 503' })),
    'failed; will retry (status 503) until T — HTTP 503');
  assert.equal(deliveryText(null), '');
  assert.equal(deliveryText({ event: 'new_kind' }), 'new_kind');
  assert.equal(deliveryWhere(entry('sent')), 'route #1 → slack-ops');
  assert.equal(deliveryWhere({ channel: 'x' }), 'no route → x');
});

test('deliveryOutcome: sent, held, dropped or nothing', () => {
  assert.equal(deliveryOutcome([entry('routed'), entry('sent')]), '1 message sent');
  assert.equal(deliveryOutcome([entry('sent'), entry('sent')]), '2 messages sent');
  assert.equal(deliveryOutcome([entry('routed'), entry('inhibited')]), 'held: nothing sent yet');
  assert.equal(deliveryOutcome([entry('routed'), entry('dropped')]), 'dropped: nothing sent');
  assert.equal(deliveryOutcome([entry('routed')]), 'nothing sent yet');
  assert.equal(deliveryOutcome([]), 'no route sends this alert');
  assert.equal(deliveryOutcome(undefined), 'no route sends this alert');
});

test('recurrenceText: the window in one line, UTC by default', () => {
  assert.equal(recurrenceText({ weekdays: ['saturday:sunday'], times: [{ start: '02:00:00', end: '04:00:00' }],
    days_of_month: [], months: [], years: [], time_zone: 'Europe/Paris' }),
  'saturday:sunday · 02:00:00–04:00:00 · Europe/Paris');
  assert.equal(recurrenceText({ days_of_month: ['-1'] }), 'days -1 · UTC');
  assert.equal(recurrenceText(null), '');
});

test('silenceBody: matchers, comment, duration, an optional weekly window; errors before asking the server', () => {
  const now = Date.parse('2026-12-01T00:00:00Z');
  const { body } = silenceBody({ rule: ' high_error_rate ', days: '7', comment: 'maintenance',
    weekdays: ['saturday', 'sunday'], from: '02:00', to: '04:00', timeZone: 'Europe/Paris' }, now);
  assert.deepEqual(body, {
    rule: 'high_error_rate', comment: 'maintenance', ends_at: '2026-12-08T00:00:00.000Z',
    recurrence: { time_zone: 'Europe/Paris', weekdays: ['saturday', 'sunday'], times: [{ start: '02:00', end: '04:00' }] },
  });
  assert.deepEqual(silenceBody({ platform: 'tiktok', days: 1, comment: 'x' }, now).body,
    { platform: 'tiktok', comment: 'x', ends_at: '2026-12-02T00:00:00.000Z' });
  assert.match(silenceBody({ days: 1, comment: 'x' }, now).error, /rule, a platform or a severity/);
  assert.match(silenceBody({ rule: 'r', days: 1, comment: ' ' }, now).error, /why/);
  assert.match(silenceBody({ rule: 'r', days: 0, comment: 'x' }, now).error, /1 to 366/);
  assert.match(silenceBody({ rule: 'r', days: 1, comment: 'x', from: '18:00', to: '09:00' }, now).error, /end after the start/);
  assert.match(silenceBody({ rule: 'r', days: 1, comment: 'x', from: '25:00', to: '26:00' }, now).error, /HH:MM/);
});
