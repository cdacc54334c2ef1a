/**
 * How the dashboard writes values: integers, ratios as percentages,
 * seconds and milliseconds, durations ("2 h 5 min"), relative times
 * ("12 min ago") and local dates, plus the parser of the server's RFC 3339
 * timestamps. Pure functions over Intl: no DOM, no network.
 */

const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** Local-time formats (the browser's time zone, 24-hour clock). */
const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
export const fullFormat = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
  hourCycle: 'h23', timeZoneName: 'short',
});
export const hourMinuteFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
export const clockFormat = new Intl.DateTimeFormat(undefined, {
  hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
});
export const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric' });
export const dayTimeFormat = new Intl.DateTimeFormat(undefined, {
  month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
});

/** A finite number (not NaN, not ±Infinity, not a numeric string). */
export const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

/** Parses the server's RFC 3339 timestamps (which carry microseconds) to epoch ms, or NaN. */
export function parseTime(text) {
  if (typeof text !== 'string') return NaN;
  return Date.parse(text.replace(/(\.\d{3})\d+/, '$1'));
}

/** `value` with at most `digits` decimals and no trailing zeros: trimNumber(1.50, 2) → "1.5". */
export function trimNumber(value, digits) {
  return String(Number(value.toFixed(digits)));
}

export function fmtInt(value) {
  return isNum(value) ? intFormat.format(value) : '—';
}

/** Integers with separators; others with 1–3 decimals depending on their size. */
export function fmtNumber(value) {
  if (!isNum(value)) return '—';
  if (Number.isInteger(value)) return intFormat.format(value);
  const digits = Math.abs(value) >= 100 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
  return trimNumber(value, digits);
}

/** A ratio (0–1) as a percentage with one decimal; exactly 0 and 100 bare. */
export function fmtPercent(ratio) {
  if (!isNum(ratio)) return '—';
  const pct = ratio * 100;
  if (pct === 0 || pct === 100) return `${pct}%`;
  return `${pct.toFixed(1)}%`;
}

/** A ratio as a chart axis label: "5%", "0.25%", "12.5%". */
export function fmtPercentAxis(ratio) {
  const pct = ratio * 100;
  return `${trimNumber(pct, pct < 1 ? 2 : 1)}%`;
}

export function fmtSeconds(seconds) {
  if (!isNum(seconds)) return '—';
  if (Number.isInteger(seconds)) return `${intFormat.format(seconds)} s`;
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 100) return `${seconds.toFixed(1)} s`;
  return `${intFormat.format(Math.round(seconds))} s`;
}

export function fmtMillis(ms) {
  if (!isNum(ms)) return '—';
  if (ms < 1000) return `${trimNumber(ms, ms < 10 ? 1 : 0)} ms`;
  return fmtSeconds(ms / 1000);
}

export function fmtDateTime(ms) {
  return Number.isFinite(ms) ? dateTimeFormat.format(ms) : '—';
}

/** "45 s", "12 min", "2 h 5 min", "3 d 4 h"; negative durations read "0 s". */
export function fmtDuration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** `ms` relative to `now` (both epoch ms): "just now" within 5 s, "3 min ago", "in 2 min". */
export function fmtAgo(ms, now) {
  if (!Number.isFinite(ms)) return '—';
  const diff = (now - ms) / 1000;
  if (diff < -5) return `in ${fmtDuration(-diff)}`;
  if (diff < 5) return 'just now';
  return `${fmtDuration(diff)} ago`;
}

/** An event's value in the events table: seconds for *.latency and *.duration, else a number. */
export function fmtEventValue(name, value) {
  if (/\.(latency|duration)$/.test(name || '')) return fmtSeconds(value);
  return fmtNumber(value);
}
