// Unit tests of Sources/TocsinAPI/Dashboard/staleness.js: the replica lag
// header, and when the toolbar says "data as of …".
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { dataAsOf, describeLag, parseReadLag } from '../../Sources/TocsinAPI/Dashboard/staleness.js';

test('parseReadLag: the documented format only; absent or malformed means fresh', () => {
  assert.equal(parseReadLag('0.000'), 0);
  assert.equal(parseReadLag('12.345'), 12.345);
  assert.equal(parseReadLag(null), 0);
  assert.equal(parseReadLag(''), 0);
  assert.equal(parseReadLag('-1.000'), 0);
  assert.equal(parseReadLag('1e9'), 0);
  assert.equal(parseReadLag('Infinity'), 0);
  assert.equal(parseReadLag('3'), 0);
});

test('dataAsOf: null up to the threshold, the refresh time minus the lag beyond it', () => {
  const updated = Date.UTC(2026, 11, 1, 14, 5, 9);
  assert.equal(dataAsOf(updated, 0), null);
  assert.equal(dataAsOf(updated, 5), null);
  assert.equal(dataAsOf(0, 60), null);
  assert.equal(dataAsOf(updated, 12.5).getTime(), updated - 12500);
  assert.equal(dataAsOf(updated, 2, 1).getTime(), updated - 2000);
});

test('describeLag: seconds, then minutes, then hours', () => {
  assert.equal(describeLag(12.4), 'the replica is 12 s behind');
  assert.equal(describeLag(600), 'the replica is 10 min behind');
  assert.equal(describeLag(3 * 3600), 'the replica is 3 h behind');
});
