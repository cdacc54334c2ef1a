// Unit tests of Sources/TocsinAPI/Dashboard/format.js: numbers, percentages,
// seconds, durations, relative times and timestamp parsing.
import { test } from 'node:test';
import assert from 'node:assert/strict';

process.env.TZ = 'UTC'; // before the module creates its Intl formats
const {
  isNum, parseTime, trimNumber, fmtInt, fmtNumber, fmtPercent, fmtPercentAxis, fmtSeconds, fmtMillis,
  fmtDateTime, fmtDuration, fmtAgo, fmtEventValue,
} = await import('../../Sources/TocsinAPI/Dashboard/format.js');

test('isNum accepts finite numbers only', () => {
  for (const v of [0, -0, -1, 1.5, 1e308, Number.MIN_VALUE]) assert.equal(isNum(v), true, String(v));
  for (const v of [NaN, Infinity, -Infinity, '1', null, undefined, {}, [], true]) assert.equal(isNum(v), false, String(v));
});

test('parseTime reads RFC 3339 with microseconds, offsets, and nothing else', () => {
  assert.equal(parseTime('2026-11-29T14:05:09.123456Z'), Date.UTC(2026, 10, 29, 14, 5, 9, 123));
  assert.equal(parseTime('2026-11-29T14:05:09Z'), Date.UTC(2026, 10, 29, 14, 5, 9));
  assert.equal(parseTime('2026-11-29T16:05:09.5+02:00'), Date.UTC(2026, 10, 29, 14, 5, 9, 500));
  assert.equal(parseTime('1970-01-01T00:00:00Z'), 0);
  for (const bad of [null, undefined, 0, 1700000000000, '', 'yesterday', '2026-13-45T99:00:00Z', {}]) {
    assert.ok(Number.isNaN(parseTime(bad)), `parseTime(${JSON.stringify(bad)})`);
  }
});

test('trimNumber rounds to the digits and drops trailing zeros', () => {
  assert.equal(trimNumber(1.5, 2), '1.5');
  assert.equal(trimNumber(2, 2), '2');
  assert.equal(trimNumber(3.14159, 3), '3.142');
  assert.equal(trimNumber(0, 1), '0');
  assert.equal(trimNumber(-0.04, 1), '0'); // rounds to -0, which prints as 0
  assert.equal(trimNumber(99.999, 2), '100');
});

test('fmtInt groups thousands and rounds; non-numbers read as a dash', () => {
  assert.equal(fmtInt(0), '0');
  assert.equal(fmtInt(1234567), '1,234,567');
  assert.equal(fmtInt(-42), '-42');
  assert.equal(fmtInt(1.6), '2');
  assert.equal(fmtInt(1e21), '1,000,000,000,000,000,000,000');
  for (const v of [NaN, null, undefined, '12', Infinity]) assert.equal(fmtInt(v), '—');
});

test('fmtNumber: integers grouped, fractions with 1–3 decimals by size', () => {
  assert.equal(fmtNumber(0), '0');
  assert.equal(fmtNumber(1234), '1,234');
  assert.equal(fmtNumber(123.456), '123.5');
  assert.equal(fmtNumber(12.3456), '12.35');
  assert.equal(fmtNumber(0.12345), '0.123');
  assert.equal(fmtNumber(0.0001), '0');
  assert.equal(fmtNumber(-0.5), '-0.5');
  assert.equal(fmtNumber(-150.26), '-150.3');
  assert.match(fmtNumber(1.5e300), /^1,500,000,000,(000,)+000$/);
  for (const v of [NaN, null, undefined, '5', -Infinity]) assert.equal(fmtNumber(v), '—');
});

test('fmtPercent: one decimal, exactly 0 % and 100 % bare, any sign', () => {
  assert.equal(fmtPercent(0), '0%');
  assert.equal(fmtPercent(-0), '0%');
  assert.equal(fmtPercent(1), '100%');
  assert.equal(fmtPercent(0.05), '5.0%');
  assert.equal(fmtPercent(0.1234), '12.3%');
  assert.equal(fmtPercent(0.94), '94.0%');
  assert.equal(fmtPercent(-0.05), '-5.0%');
  assert.equal(fmtPercent(1.5), '150.0%');
  assert.equal(fmtPercent(0.00001), '0.0%');
  for (const v of [NaN, null, undefined, '0.5']) assert.equal(fmtPercent(v), '—');
});

test('fmtPercentAxis: two decimals below 1 %, one above, no trailing zeros', () => {
  assert.equal(fmtPercentAxis(0), '0%');
  assert.equal(fmtPercentAxis(0.05), '5%');
  assert.equal(fmtPercentAxis(0.15), '15%'); // 15.000000000000002 in floating point
  assert.equal(fmtPercentAxis(0.125), '12.5%');
  assert.equal(fmtPercentAxis(0.0025), '0.25%');
  assert.equal(fmtPercentAxis(0.00001), '0%');
});

test('fmtSeconds: whole seconds bare, two decimals below 10, one below 100, then whole', () => {
  assert.equal(fmtSeconds(0), '0 s');
  assert.equal(fmtSeconds(1), '1 s');
  assert.equal(fmtSeconds(1.5), '1.50 s');
  assert.equal(fmtSeconds(9.999), '10.00 s');
  assert.equal(fmtSeconds(12.34), '12.3 s');
  assert.equal(fmtSeconds(123.4), '123 s');
  assert.equal(fmtSeconds(1234.5), '1,235 s');
  assert.equal(fmtSeconds(3600), '3,600 s');
  assert.equal(fmtSeconds(-2.5), '-2.50 s');
  assert.equal(fmtSeconds(1e21), '1,000,000,000,000,000,000,000 s');
  for (const v of [NaN, null, undefined, '1']) assert.equal(fmtSeconds(v), '—');
});

test('fmtMillis: milliseconds below a second, then seconds', () => {
  assert.equal(fmtMillis(0), '0 ms');
  assert.equal(fmtMillis(5.24), '5.2 ms');
  assert.equal(fmtMillis(14.7), '15 ms');
  assert.equal(fmtMillis(999.4), '999 ms');
  assert.equal(fmtMillis(1000), '1 s');
  assert.equal(fmtMillis(1500), '1.50 s');
  assert.equal(fmtMillis(-5), '-5 ms');
  for (const v of [NaN, null, undefined]) assert.equal(fmtMillis(v), '—');
});

test('fmtDateTime: local date and time, a dash for non-finite input', () => {
  const text = fmtDateTime(Date.UTC(2026, 10, 29, 14, 5, 9));
  assert.match(text, /14:05:09/);
  assert.match(text, /29/);
  for (const v of [NaN, Infinity, undefined]) assert.equal(fmtDateTime(v), '—');
});

test('fmtDuration: seconds, minutes, hours and minutes, days and hours', () => {
  const cases = [
    [0, '0 s'], [44.6, '45 s'], [59.4, '59 s'], [59.6, '1 min'], [60, '1 min'], [3599, '59 min'],
    [3600, '1 h'], [3660, '1 h 1 min'], [7500, '2 h 5 min'], [86399, '23 h 59 min'], [86400, '1 d'],
    [90000, '1 d 1 h'], [3 * 86400 + 4 * 3600 + 59, '3 d 4 h'], [1e9, '11574 d 1 h'],
    [-30, '0 s'], [-Infinity, '0 s'],
  ];
  for (const [seconds, text] of cases) assert.equal(fmtDuration(seconds), text, `fmtDuration(${seconds})`);
});

test('fmtAgo: "just now" within 5 s either way, else "… ago" or "in …"', () => {
  const now = Date.UTC(2026, 10, 29, 12);
  assert.equal(fmtAgo(now, now), 'just now');
  assert.equal(fmtAgo(now - 4000, now), 'just now');
  assert.equal(fmtAgo(now + 4000, now), 'just now');
  assert.equal(fmtAgo(now - 5000, now), '5 s ago');
  assert.equal(fmtAgo(now - 120000, now), '2 min ago');
  assert.equal(fmtAgo(now - 26 * 3600000, now), '1 d 2 h ago');
  assert.equal(fmtAgo(now + 60000, now), 'in 1 min');
  assert.equal(fmtAgo(NaN, now), '—');
  assert.equal(fmtAgo(Infinity, now), '—');
});

test('fmtEventValue: *.latency and *.duration in seconds, the rest as numbers', () => {
  assert.equal(fmtEventValue('webhook.latency', 1.5), '1.50 s');
  assert.equal(fmtEventValue('worker.duration', 2), '2 s');
  assert.equal(fmtEventValue('api.latency', null), '—');
  assert.equal(fmtEventValue('upload.success', 1), '1');
  assert.equal(fmtEventValue('latency', 1.5), '1.5'); // no dot: not a latency event
  assert.equal(fmtEventValue('api.latency.p95', 1.25), '1.25');
  assert.equal(fmtEventValue(null, 1234), '1,234');
  assert.equal(fmtEventValue(undefined, undefined), '—');
});
