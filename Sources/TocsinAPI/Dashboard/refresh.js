/**
 * When the page reloads what: the full refresh of every section, the
 * partial one after a filter change, and the one timer behind all polling
 * (auto-refresh, retries with backoff while the API is unreachable, and
 * alert polling while the live stream is down). Also the toolbar's
 * "Updated 14:05:09" line.
 */

import { loadActiveAlerts } from './alerts.js';
import { loadSeries } from './chart-view.js';
import { REFRESH_MS } from './config.js';
import { $ } from './dom.js';
import { updateEmptyState } from './empty-state.js';
import { loadEvents } from './events.js';
import { clockFormat } from './format.js';
import { dataAsOf, describeLag } from './staleness.js';
import { loadHistory } from './history.js';
import { runLoads, startBannerCountdown } from './loading.js';
import { loadDeadLetters } from './notifications.js';
import { loadRules } from './rules.js';
import { loadSilences } from './silences.js';
import { loadSummary } from './stats.js';
import { state } from './state.js';
import { loadWorkers } from './workers.js';

const metricLoads = () => [
  ['summary', loadSummary],
  ['chart-upload', () => loadSeries('upload')],
  ['chart-webhook', () => loadSeries('webhook')],
];

function fullLoads() {
  return [
    ['rules', loadRules],
    ...metricLoads(),
    ['events', loadEvents],
    ['alerts', loadActiveAlerts],
    ['workers', loadWorkers],
    ['dead-letters', loadDeadLetters],
    ['silences', loadSilences],
    ['history', loadHistory],
  ];
}

export async function refreshAll() {
  if (!state.session) return;
  clearTimeout(state.refreshTimer);
  state.refreshTimer = null;
  state.refreshLag = 0;
  const ok = await runLoads(fullLoads(), { full: true });
  if (!state.session) return;
  if (ok) {
    state.lastUpdated = Date.now();
    state.readLag = state.refreshLag;
    renderLastUpdated();
  }
  updateEmptyState();
  document.body.dataset.ready = 'true';
  scheduleNext();
}

/** Reloads what the platform / window / type filters affect. */
export async function refreshView({ events = true, metrics = true } = {}) {
  const loads = [];
  if (metrics) loads.push(...metricLoads());
  if (events) loads.push(['events', loadEvents]);
  await runLoads(loads);
  updateEmptyState();
}

/**
 * One timer drives all polling:
 *  - API unreachable → retry everything with backoff (2 s … 30 s), whatever the toggle says;
 *  - auto-refresh on → everything every 30 s;
 *  - auto-refresh paused but the live stream is down → active alerts every 30 s;
 *  - paused and live → nothing (the stream pushes alert changes).
 */
export function scheduleNext() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = null;
  if (!state.session) return;
  let delay;
  let action;
  if (state.failing) {
    delay = state.backoffMs;
    action = refreshAll;
  } else if (state.autoRefresh) {
    delay = REFRESH_MS;
    action = refreshAll;
  } else if (state.streamState !== 'live') {
    delay = REFRESH_MS;
    action = pollActiveAlerts;
  } else {
    return;
  }
  state.nextRefreshAt = Date.now() + delay;
  state.refreshTimer = setTimeout(action, delay);
  if (state.failing) startBannerCountdown();
}

async function pollActiveAlerts() {
  await runLoads([['alerts', loadActiveAlerts]]);
  scheduleNext();
}

export function renderLastUpdated() {
  const node = $('#last-updated');
  if (!node || !state.lastUpdated) return;
  const asOf = dataAsOf(state.lastUpdated, state.readLag);
  node.textContent = `Updated ${clockFormat.format(state.lastUpdated)}`
    + (asOf ? ` · data as of ${clockFormat.format(asOf)} (${describeLag(state.readLag)})` : '')
    + (state.autoRefresh ? ' · refreshing every 30 s' : ' · auto-refresh paused');
  if (asOf) node.dataset.stale = 'true'; else delete node.dataset.stale;
}
