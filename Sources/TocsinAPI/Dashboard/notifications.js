/**
 * The "Dead-lettered notifications" section (#dead-letters): notifications
 * that gave up after every retry (GET /api/notifications?status=dead), with
 * the admin's Retry button. Hidden for good on a server without that
 * endpoint (404).
 */

import { ApiError, api } from './api.js';
import { $, el, markLoaded, setText, show, timeAbs } from './dom.js';
import { fmtInt } from './format.js';
import { begin, runLoads, setSectionError } from './loading.js';
import { isAdmin, state } from './state.js';

export async function loadDeadLetters() {
  if (!state.deadLettersSupported) return;
  const current = begin('dead-letters');
  let data;
  try {
    data = await api.get('/api/notifications', { status: 'dead', limit: 100 });
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      // This server has no notifications endpoint: hide the section for good.
      state.deadLettersSupported = false;
      show($('#dead-letters'), false);
      return;
    }
    throw err;
  }
  if (!current()) return;
  renderDeadLetters(Array.isArray(data.notifications) ? data.notifications : []);
}

function deadLetterRow(n) {
  const action = isAdmin()
    ? el('button', { type: 'button', className: 'btn btn-small', dataset: { action: 'retry' }, text: 'Retry' })
    : null;
  const row = el('tr', { dataset: { notificationId: n.id } },
    el('td', null, timeAbs(n.created_at)),
    el('td', { text: n.channel || '—' }),
    el('td', null, `#${n.alert_id ?? '?'} `, el('span', { className: 'muted', text: n.rule || '' })),
    el('td', { text: n.transition || '—' }),
    el('td', { className: 'num', text: fmtInt(n.attempts) }),
    el('td', { className: 'wrap', text: n.last_error || '—' }),
    el('td', null, action));
  if (action) action.addEventListener('click', () => retryNotification(n.id, row, action));
  return row;
}

function renderDeadLetters(items) {
  show($('#dead-letters'), true);
  setText('#dead-letters-count', String(items.length));
  $('#dead-letters tbody').replaceChildren(...items.map(deadLetterRow));
  show($('#dead-letters-none'), items.length === 0);
  show($('#dead-letters-table').closest('.table-wrap'), items.length > 0);
  markLoaded('#dead-letters');
}

async function retryNotification(id, row, button) {
  button.disabled = true;
  button.textContent = 'Retrying…';
  try {
    await api.post(`/api/notifications/${encodeURIComponent(id)}/retry`);
    row.dataset.retried = 'true';
    button.replaceWith(el('span', { className: 'muted small', text: 'Queued for retry' }));
    setTimeout(() => runLoads([['dead-letters', loadDeadLetters]]), 2500);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    button.disabled = false;
    button.textContent = 'Retry';
    setSectionError('dead-letters', `Retry of notification ${id} failed: ${err instanceof ApiError ? err.describe() : err}`);
  }
}
