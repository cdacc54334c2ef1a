/**
 * The "Recent events" section (#events-section): the paged table of
 * GET /api/monitoring/events for the toolbar's filters, newest first.
 */

import { api } from './api.js';
import { EVENTS_PAGE_SIZE, TYPE_PREFIX, WINDOW_LABEL } from './config.js';
import { $, dash, el, markLoaded, platformChip, setText, show, timeAbs } from './dom.js';
import { fmtEventValue } from './format.js';
import { begin, runLoads } from './loading.js';
import { notePlatforms } from './platforms.js';
import { state } from './state.js';

export async function loadEvents() {
  const current = begin('events');
  const { window, platform, type } = state.filters;
  const data = await api.get('/api/monitoring/events', {
    window,
    limit: EVENTS_PAGE_SIZE,
    name: TYPE_PREFIX[type],
    platform: platform === 'all' ? null : platform,
    cursor: state.events.cursor,
  });
  if (!current()) return;
  state.events.rows = Array.isArray(data.events) ? data.events : [];
  state.events.next = data.next_cursor || null;
  notePlatforms(state.events.rows.map((e) => e.platform));
  renderEvents();
}

function labelChips(labels) {
  const entries = labels && typeof labels === 'object' ? Object.entries(labels) : [];
  if (!entries.length) return dash();
  return el('span', { className: 'chips' },
    entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => el('span', { className: 'chip', text: `${k}=${v}` })));
}

function eventRow(e) {
  return el('tr', {
    dataset: { eventId: e.id, name: e.name, platform: e.platform || '' },
  },
  el('td', null, timeAbs(e.occurred_at)),
  el('td', null, el('span', { className: /\.failure$/.test(e.name || '') ? 'event-name mono is-failure' : 'event-name mono', text: e.name })),
  el('td', null, platformChip(e.platform)),
  el('td', { className: 'num', text: fmtEventValue(e.name, e.value) }),
  el('td', null, labelChips(e.labels)));
}

function renderEvents() {
  const rows = state.events.rows || [];
  $('#events-table tbody').replaceChildren(...rows.map(eventRow));

  const page = state.events.stack.length + 1;
  show($('#events-none'), rows.length === 0);
  show($('#events-table').closest('.table-wrap'), rows.length > 0);
  markLoaded('#events-section');
  $('#events-prev').disabled = state.events.stack.length === 0;
  $('#events-next').disabled = !state.events.next;
  setText('#events-page', `Page ${page}${rows.length ? ` · ${rows.length} events` : ''}`);
  const { type, platform, window } = state.filters;
  setText('#events-scope',
    `${type === 'all' ? 'All types' : type} · ${platform === 'all' ? 'all platforms' : platform} · ${WINDOW_LABEL[window]} · newest first`);
}

export function resetEventPaging() {
  state.events.cursor = null;
  state.events.stack = [];
}

export async function pageEvents(direction) {
  const ev = state.events;
  if (direction > 0) {
    if (!ev.next) return;
    ev.stack.push(ev.cursor);
    ev.cursor = ev.next;
  } else {
    if (!ev.stack.length) return;
    ev.cursor = ev.stack.pop();
  }
  $('#events-prev').disabled = true;
  $('#events-next').disabled = true;
  await runLoads([['events', loadEvents]]);
  renderEvents();
}
