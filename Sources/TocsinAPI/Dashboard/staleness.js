/**
 * How fresh the data on screen is. Responses read from a standby carry
 * X-Tocsin-Read-Lag (seconds the standby was behind the primary); past
 * STALE_LAG_S the toolbar says "data as of …" instead of pretending the
 * numbers are live. Pure functions; no DOM.
 */

import { STALE_LAG_S } from './config.js';

/** The lag in seconds from the header's value, or 0 when absent (read on the primary) or malformed. */
export function parseReadLag(value) {
  if (typeof value !== 'string' || !/^[0-9]{1,10}\.[0-9]{3}$/.test(value)) return 0;
  return Number(value);
}

/**
 * The time the data reflects when it lags by more than the threshold, else
 * null: the refresh time minus the lag.
 */
export function dataAsOf(updatedAtMs, lagSeconds, threshold = STALE_LAG_S) {
  if (!updatedAtMs || !(lagSeconds > threshold)) return null;
  return new Date(updatedAtMs - Math.round(lagSeconds * 1000));
}

/** "the replica is 12 s behind" / "… 3 min behind", for the toolbar. */
export function describeLag(lagSeconds) {
  const s = Math.round(lagSeconds);
  if (s < 120) return `the replica is ${s} s behind`;
  if (s < 7200) return `the replica is ${Math.round(s / 60)} min behind`;
  return `the replica is ${Math.round(s / 3600)} h behind`;
}
