/**
 * The arithmetic of the two line charts, without the DOM: which series each
 * chart asks for, the time domain (and fitting it to young data), "nice"
 * value steps, time ticks aligned to the local clock, scales, the runs of a
 * line between gaps, legend texts and the per-bucket tooltips.
 * chart-view.js turns these into SVG.
 */

import { DEFAULT_WINDOW } from './config.js';
import {
  dayFormat, dayTimeFormat, fmtDateTime, fmtInt, fmtPercent, fmtPercentAxis, fmtSeconds, hourMinuteFormat, isNum,
  parseTime, trimNumber,
} from './format.js';

/**
 * The two charts: which series to ask for, how to show values, which rule's
 * threshold to draw (with a fallback when GET /api/rules is unavailable).
 */
export const CHARTS = {
  upload: {
    id: 'chart-upload-error-rate',
    section: 'chart-upload',
    query: { agg: 'ratio', numerator: 'upload.failure', denominator: 'upload.success,upload.failure' },
    fallbackThreshold: 0.05,
    fallbackSeverity: 'error',
    axis: (v) => fmtPercentAxis(v),
    value: (v) => fmtPercent(v),
    samplesNoun: 'uploads',
    what: 'upload error rate',
  },
  webhook: {
    id: 'chart-webhook-latency',
    section: 'chart-webhook',
    query: { agg: 'avg', name: 'webhook.latency' },
    fallbackThreshold: 5,
    fallbackSeverity: 'warning',
    axis: (v) => `${trimNumber(v, 2)} s`,
    value: (v) => fmtSeconds(v),
    samplesNoun: 'webhooks',
    what: 'average webhook latency',
  },
};

const DAY_MS = 86400000;
const MINUTE_MS = 60000;

/** The local time zone's offset at `t` in ms, as Date#getTimezoneOffset counts it (UTC − local). */
export function localOffsetMs(t) {
  return new Date(Number.isFinite(t) ? t : 0).getTimezoneOffset() * MINUTE_MS;
}

// ----------------------------------------------------------------- time domain

/** The chart's time range from the series' since/until, falling back to the 24 hours before `now`. */
export function timeDomain(since, until, now) {
  const t0 = Number.isFinite(since) ? since : now - DAY_MS;
  const t1 = Number.isFinite(until) && until > t0 ? until : t0 + DAY_MS;
  return { t0, t1 };
}

/** A bucket point holds data: it has samples (or, without a sample count, a value). */
function hasData(point) {
  if (!point || typeof point !== 'object') return false;
  return isNum(point.samples) ? point.samples > 0 : isNum(point.value);
}

/**
 * Where the data starts: the earliest bucket with samples over every series
 * of the given answers of GET /api/monitoring/metrics/series (null answers
 * are skipped). Epoch ms, or NaN when no bucket has data.
 */
export function firstSampleTime(answers) {
  let first = NaN;
  for (const answer of answers || []) {
    for (const series of (answer && Array.isArray(answer.series) ? answer.series : [])) {
      const point = (series && Array.isArray(series.points) ? series.points : []).find(hasData);
      const t = point ? parseTime(point.t) : NaN;
      if (Number.isFinite(t) && (Number.isNaN(first) || t < first)) first = t;
    }
  }
  return first;
}

/** Whether the charts may fit their time axis to the data: only for the default window the user did not pick. */
export function mayFitToData(window, windowExplicit) {
  return window === DEFAULT_WINDOW && !windowExplicit;
}

/** Boundaries the fitted axis may start on, the smallest usable one first. */
const FIT_STEPS_MS = [1, 5, 15, 30, 60, 180, 360, 720, 1440].map((m) => m * MINUTE_MS);
/** A fitted axis spans at least this many buckets and this long, so a lone first bucket is not the whole chart. */
const FIT_MIN_BUCKETS = 2;
const FIT_MIN_SPAN_MS = 10 * MINUTE_MS;

/**
 * Fits the time domain [t0, t1] to data that starts after t0: the axis then
 * runs from the first bucket with data (or from 2 buckets / 10 minutes
 * before t1, whichever is earlier), rounded down to a local-clock boundary
 * — a step of at least one bucket and about a tenth of the span — to t1.
 * Returns { t0, t1, fitted }; the domain is unchanged (fitted false) when
 * there is no data, the data covers the whole range, or the rounding would
 * not start later than t0. `tzOffsetMs` defaults to the local zone's.
 */
export function fitTimeDomain({ t0, t1, firstSample, bucketMs, tzOffsetMs }) {
  const unchanged = { t0, t1, fitted: false };
  if (![t0, t1, firstSample].every(Number.isFinite) || !(t1 > t0) || firstSample <= t0 || firstSample >= t1) {
    return unchanged;
  }
  const bucket = isNum(bucketMs) && bucketMs > 0 ? bucketMs : 5 * MINUTE_MS;
  const start = Math.min(firstSample, t1 - Math.max(FIT_MIN_BUCKETS * bucket, FIT_MIN_SPAN_MS));
  const step = FIT_STEPS_MS.find((s) => s >= bucket && s >= (t1 - start) / 10) || Math.max(bucket, DAY_MS);
  const offset = isNum(tzOffsetMs) ? tzOffsetMs : localOffsetMs(start);
  const fitted = Math.floor((start - offset) / step) * step + offset;
  return fitted > t0 ? { t0: fitted, t1, fitted: true } : unchanged;
}

/** The chart note's word on a fitted axis: "data since 14:05", with the date when that was another day. */
export function fittedNote(firstSample, t1) {
  const sameDay = new Date(firstSample).toDateString() === new Date(t1).toDateString();
  return `data since ${(sameDay ? hourMinuteFormat : dayTimeFormat).format(firstSample)}`;
}

// ---------------------------------------------------------------- value axis

/** A "nice" step (1, 2, 2.5, 5 × 10^n) so that about `count` steps cover `span`. */
export function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/**
 * The value axis: from 0 to a nice maximum above both the data and 1.25 ×
 * the threshold, in about four steps. `ticks` are the gridline values.
 */
export function valueScale(values, thresholdValue) {
  let top = Math.max(thresholdValue * 1.25, 0);
  for (const v of values) if (isNum(v) && v > top) top = v;
  top = top || 1;
  const step = niceStep(top, 4);
  const yMax = Math.ceil(top / step - 1e-9) * step;
  const ticks = [];
  for (let v = 0; v <= yMax + step / 2; v += step) ticks.push(v);
  return { step, yMax, ticks };
}

// ----------------------------------------------------------------- time axis

const TIME_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];

/**
 * Tick times (ms) in [t0, t1] aligned to local clock boundaries, at the
 * smallest step that needs at most `maxTicks` ticks (two days when none
 * does). `offsetMs` is the zone offset (default: the local one at t0).
 */
export function timeTicks(t0, t1, maxTicks, offsetMs = localOffsetMs(t0)) {
  const spanS = (t1 - t0) / 1000;
  const step = (TIME_STEPS.find((s) => spanS / s <= maxTicks) || 172800) * 1000;
  const ticks = [];
  for (let t = Math.ceil((t0 - offsetMs) / step) * step + offsetMs; t <= t1; t += step) ticks.push(t);
  return { ticks, step };
}

/** A tick's label: the day ("Tue 1") at day steps and at midnight on hourly ones, else "14:30". */
export function timeLabel(t, stepMs) {
  const d = new Date(t);
  const midnight = d.getHours() === 0 && d.getMinutes() === 0;
  if (stepMs >= DAY_MS || (midnight && stepMs >= 3600000)) return dayFormat.format(t);
  return hourMinuteFormat.format(t);
}

// -------------------------------------------------------------------- layout

/** The SVG's size and plot area for a container `clientWidth` pixels wide. */
export function chartLayout(clientWidth) {
  const width = Math.max(280, Math.round(clientWidth || 600));
  const height = width < 520 ? 200 : 230;
  const m = { top: 12, right: 14, bottom: 26, left: 50 };
  return { width, height, m, plotW: width - m.left - m.right, plotH: height - m.top - m.bottom };
}

/** Pixel scales: x clamps times to the domain; y maps 0…yMax upwards; r rounds to 0.1 px. */
export function scales({ m, plotW, plotH }, { t0, t1 }, yMax) {
  return {
    x: (t) => m.left + Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) * plotW,
    y: (v) => m.top + plotH - (v / yMax) * plotH,
    r: (n) => Math.round(n * 10) / 10,
  };
}

// -------------------------------------------------------------------- series

/**
 * A series' points as runs of consecutive buckets with a value, each point
 * [bucket centre in ms, value]; a bucket without a value ends a run.
 */
export function seriesRuns(points, bucketMs) {
  const runs = [];
  let run = [];
  for (const p of points || []) {
    if (p && isNum(p.value)) {
      run.push([parseTime(p.t) + bucketMs / 2, p.value]);
    } else if (run.length) {
      runs.push(run);
      run = [];
    }
  }
  if (run.length) runs.push(run);
  return runs;
}

/** The SVG path of the runs ("M…L…" per run), or "" when there is none. */
export function linePath(runs, x, y, r) {
  let d = '';
  for (const run of runs) run.forEach(([t, v], i) => { d += `${i ? 'L' : 'M'}${r(x(t))},${r(y(v))}`; });
  return d;
}

/** The legend text of a series: "tiktok · peak 17.6%", or "· no data". */
export function legendText(series, chart) {
  let peak = null;
  for (const p of series.points) if (p && isNum(p.value) && (peak === null || p.value > peak)) peak = p.value;
  return `${series.platform || 'no platform'}${peak !== null ? ` · peak ${chart.value(peak)}` : ' · no data'}`;
}

/**
 * One tooltip per bucket start, sorted by time, listing every platform's
 * value there: [{ t, title }].
 */
export function bucketTooltips(series, chart, bucketMs) {
  const byTime = new Map();
  for (const s of series) {
    for (const p of s.points) {
      const t = parseTime(p.t);
      if (!Number.isFinite(t)) continue;
      if (!byTime.has(t)) byTime.set(t, []);
      byTime.get(t).push([s.platform, p]);
    }
  }
  return [...byTime.entries()].sort((a, b) => a[0] - b[0]).map(([t, entries]) => {
    const lines = entries.map(([platform, p]) => `${platform || 'no platform'}: ${isNum(p.value) ? chart.value(p.value) : 'no data'}`
      + `${isNum(p.samples) ? ` (${fmtInt(p.samples)} ${chart.samplesNoun})` : ''}`);
    return { t, title: `${fmtDateTime(t)} – ${hourMinuteFormat.format(t + bucketMs)}\n${lines.join('\n')}` };
  });
}
