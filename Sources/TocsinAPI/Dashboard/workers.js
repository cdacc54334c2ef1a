/**
 * The "Alert-checker workers" section (#worker-status): the table of
 * GET /api/workers/alert-checker, and the admin's "Run checks now", which
 * runs every rule once (POST … ?wait=true) and shows each outcome.
 */

import { loadActiveAlerts } from './alerts.js';
import { ApiError, api, request } from './api.js';
import { $, el, fill, markLoaded, setText, show, timeAgo } from './dom.js';
import { fmtDuration, fmtInt, fmtMillis, isNum } from './format.js';
import { scheduleHistoryRefresh } from './history.js';
import { begin, runLoads } from './loading.js';
import { fmtRuleValue } from './model.js';
import { state } from './state.js';

export async function loadWorkers() {
  const current = begin('workers');
  const data = await api.get('/api/workers/alert-checker');
  if (!current()) return;
  renderWorkers(data || {});
}

function workerRow(w) {
  return el('tr', {
    dataset: { workerId: w.id, stale: w.stale ? 'true' : 'false' },
  },
  el('td', { className: 'mono', text: w.id }),
  el('td', { text: w.host || '—' }),
  el('td', { className: 'num', text: isNum(w.pid) ? String(w.pid) : '—' }),
  el('td', null, timeAgo(w.last_heartbeat)),
  el('td', null, w.last_check_at ? timeAgo(w.last_check_at) : el('span', { className: 'dash', text: 'never' })),
  el('td', { className: 'num', text: fmtMillis(w.last_check_duration_ms) }),
  el('td', { className: 'num', text: fmtInt(w.evaluations) }),
  el('td', { className: 'num', text: fmtInt(w.alerts_fired) }),
  el('td', null, el('span', { className: 'state-badge', dataset: { state: w.stale ? 'stale' : 'ok' }, text: w.stale ? 'stale' : 'healthy' })));
}

function renderWorkers(data) {
  const workers = Array.isArray(data.workers) ? [...data.workers] : [];
  workers.sort((a, b) => Number(Boolean(a.stale)) - Number(Boolean(b.stale)) || String(a.id).localeCompare(String(b.id)));
  setText('#workers-interval', isNum(data.interval_s) ? `Rules are checked every ${fmtDuration(data.interval_s)}` : '');
  $('#worker-status tbody').replaceChildren(...workers.map(workerRow));
  show($('#workers-none'), workers.length === 0);
  show($('#workers-table').closest('.table-wrap'), workers.length > 0);
  markLoaded('#worker-status');
}

/** The table of a run's results, one row per rule group. */
function resultsTable(results) {
  const heads = ['Rule', 'Group', 'Value', 'Samples', 'Outcome'];
  return el('div', { className: 'table-wrap' }, el('table', { className: 'data-table' },
    el('thead', null, el('tr', null, heads.map((h, i) => el('th', { scope: 'col', className: i === 2 || i === 3 ? 'num' : null, text: h })))),
    el('tbody', null, results.map((res) => el('tr', { dataset: { outcome: res.outcome || '' } },
      el('td', { text: res.rule || '—' }),
      el('td', { text: res.group_key || '—' }),
      el('td', { className: 'num', text: fmtRuleValue(res.rule, res.value, state.rules) }),
      el('td', { className: 'num', text: fmtInt(res.samples) }),
      el('td', null, el('span', { className: 'outcome', dataset: { outcome: res.outcome || '' }, text: (res.outcome || '—').replace('_', ' ') })))))));
}

export async function runChecks() {
  const button = $('#run-checks');
  const out = $('#run-checks-result');
  button.disabled = true;
  button.textContent = 'Running checks…';
  const started = performance.now();
  try {
    const data = await request('POST', '/api/workers/alert-checker', { query: { wait: 'true' }, timeoutMs: 60000 });
    const results = Array.isArray(data && data.results) ? data.results : [];
    const seconds = (performance.now() - started) / 1000;
    const evaluated = data && isNum(data.evaluated) ? data.evaluated : results.length;
    fill(out,
      el('p', { className: 'small' }, el('strong', { text: `Evaluated ${fmtInt(evaluated)}` }),
        ` rule group${results.length === 1 ? '' : 's'} in ${seconds.toFixed(1)} s.`),
      results.length ? resultsTable(results) : null);
    out.hidden = false;
    runLoads([['alerts', loadActiveAlerts], ['workers', loadWorkers]]);
    scheduleHistoryRefresh();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    out.replaceChildren(el('p', { className: 'form-error', text: `Run failed: ${err instanceof ApiError ? err.describe() : err}` }));
    out.hidden = false;
  } finally {
    button.disabled = false;
    button.textContent = 'Run checks now';
  }
}
