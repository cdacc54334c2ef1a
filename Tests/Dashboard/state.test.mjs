// Unit tests of Sources/TocsinAPI/Dashboard/state.js: platform colours, the
// server clock, the admin check, and forgetting a session's data.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { EXTRA_COLORS, NO_PLATFORM_COLOR, PLATFORM_COLORS } from '../../Sources/TocsinAPI/Dashboard/config.js';
import { clearSessionData, colorFor, isAdmin, serverNow, state } from '../../Sources/TocsinAPI/Dashboard/state.js';

test('colorFor: fixed colours for the known platforms, then the extra colours in order of first sight', () => {
  assert.equal(colorFor('tiktok'), PLATFORM_COLORS.tiktok);
  assert.equal(colorFor(null), NO_PLATFORM_COLOR);
  assert.equal(colorFor(''), NO_PLATFORM_COLOR);
  assert.equal(colorFor('youtube'), EXTRA_COLORS[0]);
  assert.equal(colorFor('x'), EXTRA_COLORS[1]);
  assert.equal(colorFor('youtube'), EXTRA_COLORS[0], 'stable');
  for (let i = 2; i < EXTRA_COLORS.length; i += 1) colorFor(`p${i}`);
  assert.equal(colorFor('one-more'), EXTRA_COLORS[0], 'the colours wrap around');
});

test('serverNow adds the measured clock skew', () => {
  state.clockSkewMs = 60000;
  const diff = serverNow() - Date.now();
  assert.ok(diff > 59000 && diff <= 60000, String(diff));
  state.clockSkewMs = 0;
});

test('isAdmin follows the session', () => {
  state.session = null;
  assert.equal(isAdmin(), false);
  state.session = { name: 'a', scopes: ['admin'] };
  assert.equal(isAdmin(), true);
  state.session = { name: 'r', scopes: ['read'] };
  assert.equal(isAdmin(), false);
  state.session = null;
});

test('clearSessionData forgets the data but keeps filters and platforms', () => {
  state.summary = { totals: {} };
  state.series.upload = { series: [] };
  state.events = { rows: [1], next: 'n', cursor: 'c', stack: ['s'] };
  state.activeAlerts.set(1, { id: 1 });
  state.rules = [];
  state.deadLettersSupported = false;
  state.filters = { platform: 'tiktok', window: '1h', type: 'all' };
  clearSessionData();
  assert.equal(state.summary, null);
  assert.deepEqual(state.series, { upload: null, webhook: null });
  assert.deepEqual(state.events, { rows: null, next: null, cursor: null, stack: [] });
  assert.equal(state.activeAlerts.size, 0);
  assert.equal(state.rules, null);
  assert.equal(state.deadLettersSupported, true);
  assert.deepEqual(state.filters, { platform: 'tiktok', window: '1h', type: 'all' });
  assert.ok(state.platforms.has('tiktok'));
});
