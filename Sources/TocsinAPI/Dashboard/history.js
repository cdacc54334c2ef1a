/**
 * The "Alert history" section (#alert-history): its filters, the paged
 * table of GET /api/monitoring/alerts, and a delayed reload after alerts
 * change.
 */

import { api } from './api.js';
import { HISTORY_PAGE_SIZE } from './config.js';
import {
  $, dash, el, markLoaded, platformChip, setText, severityBadge, show, statusPill, timeAbs,
} from './dom.js';
import { begin, runLoads } from './loading.js';
import { externalLabelsText, fmtRuleValue, historyNote, isExternal, resolutionText } from './model.js';
import { notePlatforms } from './platforms.js';
import { state } from './state.js';

function historyFilters() {
  return {
    status: $('#history-status').value,
    severity: $('#history-severity').value,
    rule: $('#history-rule').value.trim(),
    platform: $('#history-platform').value,
    window: $('#history-window').value,
  };
}

export async function loadHistory() {
  const current = begin('history');
  const data = await api.get('/api/monitoring/alerts', {
    ...historyFilters(), limit: HISTORY_PAGE_SIZE, cursor: state.history.cursor,
  });
  if (!current()) return;
  state.history.rows = Array.isArray(data.alerts) ? data.alerts : [];
  state.history.next = data.next_cursor || null;
  notePlatforms(state.history.rows.map((a) => a.platform));
  renderHistory();
}

/** After an alert changes, refresh the history a little later (several changes often come together). */
export function scheduleHistoryRefresh() {
  clearTimeout(state.historyTimer);
  state.historyTimer = setTimeout(() => runLoads([['history', loadHistory]]), 3000);
}

function fmtEnded(alert) {
  if (alert.status !== 'resolved') return dash();
  return el('span', null, timeAbs(alert.resolved_at), el('span', { className: 'muted', text: ` · ${resolutionText(alert)}` }));
}

function historyRow(a) {
  return el('tr', {
    dataset: { alertId: a.id, status: a.status || '', severity: a.severity || '', rule: a.rule || '' },
  },
  el('td', null, timeAbs(a.started_at)),
  el('td', { text: a.rule || '—' }),
  el('td', null, severityBadge(a.severity)),
  el('td', null, statusPill(a.status)),
  el('td', null, platformChip(a.platform)),
  isExternal(a)
    ? el('td', { className: 'wrap', text: externalLabelsText(a) || 'external' })
    : el('td', { className: 'num', text: `${fmtRuleValue(a.rule, a.value, state.rules)} ${a.comparison || '>'} ${fmtRuleValue(a.rule, a.threshold, state.rules)}` }),
  el('td', null, fmtEnded(a)),
  el('td', { text: a.acknowledged_by || '—' }),
  el('td', { className: 'wrap', text: historyNote(a) || '—' }));
}

export function renderHistory() {
  const rows = state.history.rows || [];
  $('#alert-history tbody').replaceChildren(...rows.map(historyRow));
  show($('#history-none'), rows.length === 0);
  show($('#alert-history-table').closest('.table-wrap'), rows.length > 0);
  markLoaded('#alert-history');
  $('#history-prev').disabled = state.history.stack.length === 0;
  $('#history-next').disabled = !state.history.next;
  setText('#history-page', `Page ${state.history.stack.length + 1}`);
}

export async function pageHistory(direction) {
  const h = state.history;
  if (direction > 0) {
    if (!h.next) return;
    h.stack.push(h.cursor);
    h.cursor = h.next;
  } else {
    if (!h.stack.length) return;
    h.cursor = h.stack.pop();
  }
  $('#history-prev').disabled = true;
  $('#history-next').disabled = true;
  await runLoads([['history', loadHistory]]);
  renderHistory();
}

export function onHistoryFilterChange() {
  state.history.cursor = null;
  state.history.stack = [];
  runLoads([['history', loadHistory]]);
}
