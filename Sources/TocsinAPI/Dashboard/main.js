/**
 * Tocsin dashboard — the entry module (index.html loads only this). Plain
 * ES modules, no build step, no dependencies, no network access beyond the
 * same-origin API. Works under `Content-Security-Policy: default-src 'self'`:
 * no inline scripts or handlers, no eval, no innerHTML (every piece of
 * server data goes into the DOM through textContent or attributes), inline
 * styles only through the CSSOM.
 *
 * Modules: config, format, charts, model, csv, url-state (pure), state and
 * api (no DOM either: all of these import in Node, see Tests/Dashboard),
 * dom, loading, refresh, platforms, filters, sign-in, stream, and one per
 * section: alerts, stats, chart-view, events, workers, notifications,
 * history, rules, empty-state, export.
 *
 * DOM contract — stable hooks for automated browser tests:
 *   body[data-view]              "boot" | "login" | "dashboard"
 *   body[data-ready="true"]      set after the first full refresh finished (successfully or not)
 *   body[data-loading="true"]    while any request batch is in flight
 *   #boot, #boot-message         shown until GET /monitoring/session answers
 *   #login-view, #login-form, #login-key, #login-submit, #login-error
 *   #dashboard                   the signed-in view
 *   #session-name, #session-role[data-role="admin"|"read"], #logout
 *   #stream-status[data-state]   "connecting" | "live" | "reconnecting" | "offline"
 *   #error-banner                hidden unless the API is unreachable (network error or 5xx);
 *                                #error-banner-detail (last error), #error-banner-next, #error-banner-retry
 *   #filter-platform, #filter-window, #filter-type   (mirrored in the URL: ?platform=&window=&type=;
 *                                window only once chosen)
 *   #refresh, #auto-refresh (checkbox), #export-csv, #export-json, #last-updated
 *   #active-alerts > li.alert[data-alert-id][data-rule][data-severity][data-status][data-platform]
 *                                admin only: button[data-action="acknowledge"|"resolve"];
 *                                the note form: form.note-form[data-action] > input[name="note"], button[type="submit"],
 *                                button[data-action="cancel"], .form-error
 *   #active-alerts-count, #no-active-alerts
 *   #stat-upload-success-rate, #stat-oauth-failures, #stat-webhook-latency, #stat-token-failures
 *                                text = displayed value ("—" when null); data-value = raw number or "";
 *                                the line under each: #stat-…-detail
 *   #empty-state, #empty-state-curl, #copy-curl
 *   #platform-metrics > .platform-card[data-platform] (and .totals-card[data-totals="true"]),
 *                                inside: [data-group="oauth"|"upload"|...] > dd[data-field]
 *   #chart-upload-error-rate, #chart-webhook-latency > .chart-body > svg[data-chart]
 *                                path.series-line[data-platform], line.threshold[data-threshold],
 *                                rect.hover-band > title (tooltips); .legend li[data-platform]
 *   #events-table tbody tr[data-event-id][data-name][data-platform], #events-none,
 *                                #events-prev, #events-next, #events-page
 *   #worker-status tbody tr[data-worker-id][data-stale], #workers-none, #run-checks (admin only),
 *                                #run-checks-result tr[data-outcome]
 *   #dead-letters (hidden when GET /api/notifications answers 404) tbody tr[data-notification-id],
 *                                button[data-action="retry"] (admin only), #dead-letters-none
 *   #active-alerts li .alert-inhibited[data-inhibited-by] (an inhibited alert), button[data-action="deliveries"]
 *                                and .alert-deliveries tr[data-event][data-channel] (the alert's delivery ledger)
 *   #silences tbody tr[data-silence-id][data-active][data-recurring], button[data-action="end-silence"] and
 *                                #silence-form (admin only), #silences-none
 *   #alert-history tbody tr[data-alert-id][data-status][data-severity], #history-none,
 *                                #history-filters (#history-status, #history-severity, #history-rule,
 *                                #history-platform, #history-window), #history-prev, #history-next, #history-page
 *   [data-section-error="<section>"]  per-section message for errors that are not connectivity (e.g. 400)
 *   [data-loaded="false"|"true"] on each data section (#alerts-section, #platforms-section, the two chart
 *                                figures, #events-section, #worker-status, #dead-letters, #alert-history):
 *                                "false" until its first answer; a .pending-state placeholder shows meanwhile
 */

import { onUnauthorized } from './api.js';
import { watchChartSizes } from './chart-view.js';
import { REFRESH_MS } from './config.js';
import { $, refreshRelativeTimes } from './dom.js';
import { copyCurl } from './empty-state.js';
import { pageEvents } from './events.js';
import { exportCsv, exportJson } from './export.js';
import { onFilterChange, readFiltersFromUrl, syncFilterControls } from './filters.js';
import { onHistoryFilterChange, pageHistory } from './history.js';
import { configureLoading } from './loading.js';
import { refreshAll, renderLastUpdated, scheduleNext } from './refresh.js';
import { checkSession, logout, onLoginSubmit, onSessionEnded, setView } from './sign-in.js';
import { onSilenceSubmit } from './silences.js';
import { state } from './state.js';
import { checkStreamSilence } from './stream.js';
import { runChecks } from './workers.js';

function wire() {
  $('#login-form').addEventListener('submit', onLoginSubmit);
  $('#logout').addEventListener('click', logout);
  $('#controls').addEventListener('submit', (ev) => ev.preventDefault());
  for (const id of ['filter-platform', 'filter-window', 'filter-type']) $(`#${id}`).addEventListener('change', onFilterChange);
  $('#refresh').addEventListener('click', () => refreshAll());
  $('#auto-refresh').addEventListener('change', (ev) => {
    state.autoRefresh = ev.target.checked;
    renderLastUpdated();
    if (!state.failing) scheduleNext();
  });
  $('#export-csv').addEventListener('click', exportCsv);
  $('#export-json').addEventListener('click', exportJson);
  $('#error-banner-retry').addEventListener('click', () => (state.session ? refreshAll() : checkSession()));
  $('#copy-curl').addEventListener('click', copyCurl);
  $('#events-prev').addEventListener('click', () => pageEvents(-1));
  $('#events-next').addEventListener('click', () => pageEvents(1));
  $('#history-prev').addEventListener('click', () => pageHistory(-1));
  $('#history-next').addEventListener('click', () => pageHistory(1));
  $('#history-filters').addEventListener('submit', (ev) => {
    ev.preventDefault();
    onHistoryFilterChange();
  });
  $('#history-filters').addEventListener('change', onHistoryFilterChange);
  $('#run-checks').addEventListener('click', runChecks);
  $('#silence-form').addEventListener('submit', onSilenceSubmit);
  // Back from a background tab after a while: catch up at once.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible' && state.session && state.autoRefresh && !state.failing
      && Date.now() - state.lastUpdated > REFRESH_MS) refreshAll();
  });
  setInterval(refreshRelativeTimes, 15000);
  setInterval(checkStreamSilence, 10000);
  watchChartSizes();
}

function init() {
  onUnauthorized(onSessionEnded);
  configureLoading({ reschedule: scheduleNext, onRecovered: () => refreshAll() });
  setView('boot');
  wire();
  readFiltersFromUrl();
  syncFilterControls();
  $('#auto-refresh').checked = state.autoRefresh;
  checkSession();
}

// Module scripts run after the document is parsed; the check keeps init safe if that ever changes.
if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
else init();
