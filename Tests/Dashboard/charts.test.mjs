// Unit tests of Sources/TocsinAPI/Dashboard/charts.js: value steps and
// scales, time ticks and labels, line runs, tooltips, and fitting the time
// axis to young data.
import { test } from 'node:test';
import assert from 'node:assert/strict';

process.env.TZ = 'UTC'; // before the modules create their Intl formats
const {
  CHARTS, bucketTooltips, chartLayout, firstSampleTime, fitTimeDomain, fittedNote, legendText, linePath, mayFitToData, niceStep,
  scales, seriesRuns, timeDomain, timeLabel, timeTicks, valueScale,
} = await import('../../Sources/TocsinAPI/Dashboard/charts.js');
const { dayFormat, dayTimeFormat, hourMinuteFormat } = await import('../../Sources/TocsinAPI/Dashboard/format.js');

const MIN = 60000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const iso = (ms) => new Date(ms).toISOString();
const close = (actual, expected, what) => assert.ok(Math.abs(actual - expected) < 1e-9 * Math.max(1, Math.abs(expected)),
  `${what}: ${actual} is not ${expected}`);
const closeAll = (actual, expected, what) => {
  assert.equal(actual.length, expected.length, `${what}: ${JSON.stringify(actual)}`);
  actual.forEach((v, i) => close(v, expected[i], `${what}[${i}]`));
};

// ------------------------------------------------------------------ value axis

test('niceStep picks 1, 2, 2.5 or 5 × 10^n covering the span in about `count` steps', () => {
  close(niceStep(1, 4), 0.25, 'niceStep(1, 4)');
  close(niceStep(100, 4), 25, 'niceStep(100, 4)');
  close(niceStep(7, 4), 2, 'niceStep(7, 4)');
  close(niceStep(0.0625, 4), 0.02, 'niceStep(0.0625, 4)');
  close(niceStep(1e12, 4), 2.5e11, 'niceStep(1e12, 4)');
  close(niceStep(3, 0), 5, 'a count below 1 counts as 1');
  close(niceStep(9.5, 1), 10, 'just under a power of ten');
});

test('valueScale: an empty series still gets an axis above the threshold', () => {
  const { step, yMax, ticks } = valueScale([], 0.05); // top = 1.25 × 5 %
  close(step, 0.02, 'step');
  close(yMax, 0.08, 'yMax');
  closeAll(ticks, [0, 0.02, 0.04, 0.06, 0.08], 'ticks');
});

test('valueScale: zero data and a zero threshold give 0…1', () => {
  const { yMax, ticks } = valueScale([0, 0], 0);
  close(yMax, 1, 'yMax');
  closeAll(ticks, [0, 0.25, 0.5, 0.75, 1], 'ticks');
});

test('valueScale: a maximum exactly on a step is not pushed a step higher', () => {
  close(valueScale([1], 0).yMax, 1, 'yMax of [1]');
  close(valueScale([100], 0).yMax, 100, 'yMax of [100]');
});

test('valueScale: data above the threshold sets the top; non-numbers are ignored', () => {
  const upload = valueScale([0.176, null, NaN, 0.02], 0.05);
  close(upload.step, 0.05, 'step');
  close(upload.yMax, 0.2, 'yMax');
  const webhook = valueScale([2.5, 1, undefined], 5); // the threshold wins: 6.25 → 8
  close(webhook.yMax, 8, 'yMax');
  closeAll(webhook.ticks, [0, 2, 4, 6, 8], 'ticks');
});

test('valueScale: huge values, a single point, negative values', () => {
  const huge = valueScale([1e12], 5);
  close(huge.yMax, 1e12, 'huge yMax');
  assert.equal(huge.ticks.length, 5);
  const single = valueScale([3], 0);
  close(single.yMax, 3, 'single yMax');
  closeAll(single.ticks, [0, 1, 2, 3], 'single ticks');
  // The axis always starts at 0: negative values do not extend it downwards.
  const negative = valueScale([-3], 1);
  close(negative.ticks[0], 0, 'first tick');
  close(negative.yMax, 1.5, 'negative yMax');
});

// ------------------------------------------------------------------ time axis

test('timeTicks over 24 hours: 3-hour steps on the clock', () => {
  const t0 = Date.UTC(2026, 10, 28, 16, 41);
  const { ticks, step } = timeTicks(t0, t0 + DAY, 10, 0);
  assert.equal(step, 3 * HOUR);
  assert.equal(ticks.length, 8);
  assert.equal(ticks[0], Date.UTC(2026, 10, 28, 18));
  assert.ok(ticks.every((t, i) => t % step === 0 && (i === 0 || t - ticks[i - 1] === step)));
});

test('timeTicks over 15 minutes: 5-minute steps', () => {
  const t0 = Date.UTC(2026, 10, 28, 10, 2, 30);
  const { ticks, step } = timeTicks(t0, t0 + 15 * MIN, 5, 0);
  assert.equal(step, 5 * MIN);
  assert.deepEqual(ticks, [Date.UTC(2026, 10, 28, 10, 5), Date.UTC(2026, 10, 28, 10, 10), Date.UTC(2026, 10, 28, 10, 15)]);
});

test('timeTicks: the smallest step that needs at most maxTicks, for several ranges', () => {
  const t0 = Date.UTC(2026, 10, 28, 0, 0, 0);
  const cases = [[10 * MIN, 10, MIN], [1 * HOUR, 10, 10 * MIN], [1 * HOUR, 3, 30 * MIN], [6 * HOUR, 6, HOUR],
    [24 * HOUR, 3, 12 * HOUR], [7 * DAY, 7, DAY], [7 * DAY, 4, 2 * DAY]];
  for (const [span, maxTicks, want] of cases) {
    const { ticks, step } = timeTicks(t0, t0 + span, maxTicks, 0);
    assert.equal(step, want, `span ${span / MIN} min, at most ${maxTicks} ticks`);
    assert.ok(ticks.length <= maxTicks + 1, `${ticks.length} ticks`); // both ends can fall on a boundary
    assert.ok(ticks.every((t) => t >= t0 && t <= t0 + span));
  }
});

test('timeTicks: when even 2-day steps are too many, it keeps 2-day steps', () => {
  const t0 = Date.UTC(2026, 10, 22, 16, 41);
  const { ticks, step } = timeTicks(t0, t0 + 7 * DAY, 3, 0);
  assert.equal(step, 2 * DAY);
  assert.ok(ticks.length >= 3 && ticks.every((t) => t % step === 0));
});

test('timeTicks: both ends included when on a boundary; empty or reversed ranges', () => {
  const t0 = Date.UTC(2026, 10, 28, 10);
  assert.deepEqual(timeTicks(t0, t0 + 10 * MIN, 10, 0).ticks.length, 11);
  assert.deepEqual(timeTicks(t0, t0, 5, 0).ticks, [t0]);
  assert.deepEqual(timeTicks(t0 + 1000, t0 + 1000, 5, 0).ticks, []);
  assert.deepEqual(timeTicks(t0 + HOUR, t0, 5, 0).ticks, []);
  assert.deepEqual(timeTicks(NaN, t0, 5, 0).ticks, []);
});

test('timeTicks aligns to the local clock: midnight in India is 18:30 UTC', () => {
  const t0 = Date.UTC(2026, 10, 28, 16, 41);
  const { ticks } = timeTicks(t0, t0 + DAY, 10, -330 * MIN); // UTC+5:30
  assert.equal(ticks[0], Date.UTC(2026, 10, 28, 18, 30));
  assert.equal(ticks[1], Date.UTC(2026, 10, 28, 21, 30));
});

test('timeLabel: the day on day steps and at midnight on hourly ones, else hours and minutes', () => {
  const midnight = Date.UTC(2026, 10, 29);
  const morning = Date.UTC(2026, 10, 29, 3);
  assert.equal(timeLabel(midnight, 3 * HOUR), dayFormat.format(midnight));
  assert.equal(timeLabel(morning, 3 * HOUR), hourMinuteFormat.format(morning));
  assert.equal(timeLabel(morning, 3 * HOUR), '03:00');
  assert.equal(timeLabel(midnight, 5 * MIN), '00:00');
  assert.equal(timeLabel(Date.UTC(2026, 10, 29, 12), DAY), dayFormat.format(Date.UTC(2026, 10, 29, 12)));
});

// ------------------------------------------------------------------ layout

test('chartLayout: at least 280 px wide, shorter below 520 px, 600 px without a width', () => {
  assert.deepEqual(chartLayout(600), { width: 600, height: 230, m: { top: 12, right: 14, bottom: 26, left: 50 }, plotW: 536, plotH: 192 });
  assert.equal(chartLayout(716.4).width, 716);
  assert.equal(chartLayout(400).height, 200);
  assert.equal(chartLayout(100).width, 280);
  for (const none of [0, undefined, NaN]) assert.equal(chartLayout(none).width, 600);
});

test('scales: x clamps to the domain, y runs upwards from the bottom, r rounds to 0.1', () => {
  const layout = chartLayout(600);
  const t0 = Date.UTC(2026, 10, 29);
  const { x, y, r } = scales(layout, { t0, t1: t0 + HOUR }, 10);
  assert.equal(x(t0), 50);
  assert.equal(x(t0 + HOUR), 586);
  assert.equal(x(t0 + HOUR / 2), 318);
  assert.equal(x(t0 - DAY), 50);
  assert.equal(x(t0 + DAY), 586);
  assert.equal(y(0), 204);
  assert.equal(y(10), 12);
  assert.equal(y(5), 108);
  assert.equal(r(12.345), 12.3);
  assert.equal(r(-0.06), -0.1);
});

// ------------------------------------------------------------------ time domain

test('timeDomain: the series range, else the 24 hours before now', () => {
  const now = Date.UTC(2026, 11, 1, 12);
  assert.deepEqual(timeDomain(now - HOUR, now, now + 5), { t0: now - HOUR, t1: now });
  assert.deepEqual(timeDomain(NaN, NaN, now), { t0: now - DAY, t1: now });
  assert.deepEqual(timeDomain(now, now, now), { t0: now, t1: now + DAY }, 'an empty range');
  assert.deepEqual(timeDomain(now, now - HOUR, now), { t0: now, t1: now + DAY }, 'a reversed range');
});

const point = (t, value, samples) => ({ t: iso(t), value, samples });

test('firstSampleTime: the earliest bucket with samples over every series and answer', () => {
  const t = Date.UTC(2026, 11, 1, 16);
  const upload = { series: [
    { platform: 'tiktok', points: [point(t, null, 0), point(t + 5 * MIN, 0.1, 20), point(t + 10 * MIN, 0.2, 5)] },
    { platform: 'instagram', points: [point(t, null, 0), point(t + 5 * MIN, null, 0), point(t + 10 * MIN, 0, 40)] },
  ] };
  const webhook = { series: [{ platform: 'tiktok', points: [point(t, 1.5, 0), point(t + 15 * MIN, 2, 3)] }] };
  assert.equal(firstSampleTime([upload]), t + 5 * MIN);
  assert.equal(firstSampleTime([webhook]), t + 15 * MIN, 'a value without samples is not data');
  assert.equal(firstSampleTime([webhook, null, upload]), t + 5 * MIN);
});

test('firstSampleTime: NaN without data; a value counts when there is no sample count', () => {
  const t = Date.UTC(2026, 11, 1, 16);
  for (const none of [undefined, [], [null], [{}], [{ series: [] }], [{ series: [{ points: [] }] }],
    [{ series: [{ points: [point(t, null, 0), point(t + MIN, null, 0)] }] }], [{ series: [null, { points: null }] }]]) {
    assert.ok(Number.isNaN(firstSampleTime(none)), JSON.stringify(none));
  }
  assert.equal(firstSampleTime([{ series: [{ points: [{ t: iso(t), value: null }, { t: iso(t + MIN), value: 0 }] }] }]), t + MIN);
  assert.equal(firstSampleTime([{ series: [{ points: [point(t, 0.5, 1)] }] }]), t, 'a single point');
  assert.equal(firstSampleTime([{ series: [{ points: [{ t: '2026-12-01T16:00:00.123456Z', value: 1, samples: 1 }] }] }]),
    Date.UTC(2026, 11, 1, 16, 0, 0, 123), 'microseconds');
  assert.ok(Number.isNaN(firstSampleTime([{ series: [{ points: [{ t: 'garbage', value: 1, samples: 1 }] }] }])));
});

test('mayFitToData: only the default window, and only when the user did not pick it', () => {
  assert.equal(mayFitToData('24h', false), true);
  assert.equal(mayFitToData('24h', true), false);
  for (const w of ['15m', '1h', '7d']) {
    assert.equal(mayFitToData(w, true), false);
    assert.equal(mayFitToData(w, false), false);
  }
});

// The e2e test's clock: the window ends at 16:46:42, 5-minute buckets.
const t1 = Date.UTC(2026, 11, 1, 16, 46, 42);
const t0 = t1 - DAY;
const fit = (firstSample, extra = {}) => fitTimeDomain({ t0, t1, firstSample, bucketMs: 5 * MIN, tzOffsetMs: 0, ...extra });

test('fitTimeDomain: minutes-old data starts the axis at its first bucket', () => {
  assert.deepEqual(fit(Date.UTC(2026, 11, 1, 16, 35)), { t0: Date.UTC(2026, 11, 1, 16, 35), t1, fitted: true });
});

test('fitTimeDomain: seconds-old data still gets 10 minutes (2 buckets at least)', () => {
  const domain = fit(Date.UTC(2026, 11, 1, 16, 45));
  assert.deepEqual(domain, { t0: Date.UTC(2026, 11, 1, 16, 35), t1, fitted: true });
  const minute = fitTimeDomain({ t0, t1, firstSample: t1 - 3 * MIN, bucketMs: MIN, tzOffsetMs: 0 });
  assert.equal(minute.t0, Date.UTC(2026, 11, 1, 16, 36), '1-minute buckets: 10 minutes, on the minute');
});

test('fitTimeDomain: older data rounds down to coarser boundaries (about a tenth of the span)', () => {
  assert.equal(fit(Date.UTC(2026, 11, 1, 13, 40)).t0, Date.UTC(2026, 11, 1, 13, 30), '3 hours: 30-minute boundary');
  assert.equal(fit(Date.UTC(2026, 11, 1, 15, 52)).t0, Date.UTC(2026, 11, 1, 15, 45), '1 hour: 15-minute boundary');
  assert.equal(fit(Date.UTC(2026, 11, 1, 8, 20)).t0, Date.UTC(2026, 11, 1, 8), '8 hours: hour boundary');
  assert.equal(fit(Date.UTC(2026, 10, 30, 20, 45)).t0, Date.UTC(2026, 10, 30, 18), '20 hours: 3-hour boundary');
});

test('fitTimeDomain: boundaries on the local clock', () => {
  // UTC+5:30: 20:45 UTC is 02:15 local; the 3-hour boundary below is local midnight, 18:30 UTC.
  assert.equal(fit(Date.UTC(2026, 10, 30, 20, 45), { tzOffsetMs: -330 * MIN }).t0, Date.UTC(2026, 10, 30, 18, 30));
});

test('fitTimeDomain: no fit when the data fills the window or there is none', () => {
  const unchanged = { t0, t1, fitted: false };
  assert.deepEqual(fit(t0 - HOUR), unchanged, 'data older than the window');
  assert.deepEqual(fit(t0), unchanged, 'data from the first bucket');
  assert.deepEqual(fit(t0 + 5 * MIN), unchanged, 'rounding would reach back past the window');
  assert.deepEqual(fit(NaN), unchanged, 'no data');
  assert.deepEqual(fit(t1), unchanged, 'data after the end');
  assert.deepEqual(fitTimeDomain({ t0: t1, t1: t0, firstSample: t1 - HOUR, bucketMs: 5 * MIN, tzOffsetMs: 0 }),
    { t0: t1, t1: t0, fitted: false }, 'a reversed domain');
});

test('fitTimeDomain: without a bucket size it assumes 5 minutes; without an offset, the local zone (UTC here)', () => {
  assert.equal(fitTimeDomain({ t0, t1, firstSample: Date.UTC(2026, 11, 1, 16, 38) }).t0, Date.UTC(2026, 11, 1, 16, 35));
});

test('fitTimeDomain never cuts data off and never widens the window', () => {
  for (let age = MIN; age < DAY; age += 7 * MIN) {
    const firstSample = t1 - age;
    const domain = fit(firstSample);
    assert.ok(domain.t0 <= firstSample, `age ${age / MIN} min: axis starts after the data`);
    assert.ok(domain.t0 >= t0, `age ${age / MIN} min: axis starts before the window`);
    assert.ok(domain.t1 - domain.t0 >= 10 * MIN, `age ${age / MIN} min: under 10 minutes`);
    assert.equal(domain.t1, t1);
  }
});

test('fittedNote: the time of the first data, with its date when that was another day', () => {
  assert.equal(fittedNote(Date.UTC(2026, 11, 1, 16, 35), t1), 'data since 16:35');
  assert.equal(fittedNote(Date.UTC(2026, 11, 1, 0, 0), t1), 'data since 00:00');
  const yesterday = Date.UTC(2026, 10, 30, 20, 45);
  assert.equal(fittedNote(yesterday, t1), `data since ${dayTimeFormat.format(yesterday)}`);
  assert.match(fittedNote(yesterday, t1), /30.*20:45/);
});

// ------------------------------------------------------------------ series

test('seriesRuns: values at bucket centres, split at gaps', () => {
  const t = Date.UTC(2026, 11, 1, 16);
  const points = [point(t, 1, 1), point(t + 5 * MIN, 2, 1), point(t + 10 * MIN, null, 0),
    point(t + 15 * MIN, 0, 3), point(t + 20 * MIN, null, 0), point(t + 25 * MIN, 4, 1), point(t + 30 * MIN, 5, 1)];
  const half = 2.5 * MIN;
  assert.deepEqual(seriesRuns(points, 5 * MIN), [
    [[t + half, 1], [t + 5 * MIN + half, 2]],
    [[t + 15 * MIN + half, 0]],
    [[t + 25 * MIN + half, 4], [t + 30 * MIN + half, 5]],
  ]);
});

test('seriesRuns: empty, all gaps, a single point', () => {
  const t = Date.UTC(2026, 11, 1, 16);
  assert.deepEqual(seriesRuns([], 5 * MIN), []);
  assert.deepEqual(seriesRuns(undefined, 5 * MIN), []);
  assert.deepEqual(seriesRuns([point(t, null, 0), point(t + MIN, NaN, 0), null], MIN), []);
  assert.deepEqual(seriesRuns([point(t, 7, 1)], MIN), [[[t + MIN / 2, 7]]]);
});

test('linePath: one M…L… subpath per run', () => {
  const x = (t) => t;
  const y = (v) => 100 - v;
  const r = (n) => n;
  assert.equal(linePath([], x, y, r), '');
  assert.equal(linePath([[[1, 10], [2, 20]], [[5, 0]]], x, y, r), 'M1,90L2,80M5,100');
});

test('legendText: the peak in the chart\'s format, or "no data"', () => {
  const t = Date.UTC(2026, 11, 1, 16);
  assert.equal(legendText({ platform: 'tiktok', points: [point(t, 0.1, 1), point(t, 0.176, 1), point(t, null, 0)] }, CHARTS.upload),
    'tiktok · peak 17.6%');
  assert.equal(legendText({ platform: 'tiktok', points: [point(t, 0, 5)] }, CHARTS.upload), 'tiktok · peak 0%');
  assert.equal(legendText({ platform: 'x', points: [point(t, -2, 1), point(t, -1, 1)] }, CHARTS.webhook), 'x · peak -1 s');
  assert.equal(legendText({ platform: null, points: [] }, CHARTS.webhook), 'no platform · no data');
});

test('bucketTooltips: one per bucket start, sorted, every platform listed', () => {
  const t = Date.UTC(2026, 11, 1, 16);
  const series = [
    { platform: 'tiktok', points: [point(t + 5 * MIN, 0.25, 8), point(t, null, 0)] },
    { platform: null, points: [point(t, 0.5, 2), { t: 'not a time', value: 1, samples: 1 }] },
  ];
  const tips = bucketTooltips(series, CHARTS.upload, 5 * MIN);
  assert.deepEqual(tips.map((tip) => tip.t), [t, t + 5 * MIN]);
  assert.deepEqual(tips[0].title.split('\n').slice(1), ['tiktok: no data (0 uploads)', 'no platform: 50.0% (2 uploads)']);
  assert.deepEqual(tips[1].title.split('\n').slice(1), ['tiktok: 25.0% (8 uploads)']);
  assert.match(tips[0].title, /^.*16:00:00 – 16:05\n/);
  assert.deepEqual(bucketTooltips([], CHARTS.upload, 5 * MIN), []);
  const noSamples = bucketTooltips([{ platform: 'a', points: [{ t: iso(t), value: 2 }] }], CHARTS.webhook, MIN);
  assert.equal(noSamples[0].title.split('\n')[1], 'a: 2 s');
});

test('CHARTS: axis and value formats of both charts', () => {
  assert.equal(CHARTS.upload.axis(0.05), '5%');
  assert.equal(CHARTS.upload.value(0.176), '17.6%');
  assert.equal(CHARTS.webhook.axis(2.5), '2.5 s');
  assert.equal(CHARTS.webhook.axis(8), '8 s');
  assert.equal(CHARTS.webhook.value(1.333), '1.33 s');
});
