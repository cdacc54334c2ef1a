/**
 * The "Silences" section (#silences): active and future silences
 * (GET /api/silences) with their recurring window, and for admins the form
 * that creates one (POST /api/silences, optionally recurring: weekdays and
 * times in a time zone) and the End button (DELETE /api/silences/{id}).
 */

import { ApiError, api } from './api.js';
import { $, $$, el, markLoaded, setText, show, timeAbs } from './dom.js';
import { recurrenceText, silenceBody } from './ledger.js';
import { begin, runLoads, setSectionError } from './loading.js';
import { matchersText } from './model.js';
import { isAdmin } from './state.js';

export async function loadSilences() {
  const current = begin('silences');
  const data = await api.get('/api/silences');
  if (!current()) return;
  renderSilences(Array.isArray(data.silences) ? data.silences : []);
}

function matchesText(s) {
  const parts = [];
  if (s.rule) parts.push(`rule ${s.rule}`);
  if (s.platform) parts.push(`platform ${s.platform}`);
  if (s.severity) parts.push(`severity ${s.severity}`);
  for (const [k, v] of Object.entries(s.labels || {})) parts.push(`${k}=${v}`);
  const matchers = matchersText(s.matchers);
  if (matchers) parts.push(matchers);
  return parts.join(', ') || 'everything';
}

function silenceRow(s) {
  const end = isAdmin() && !s.deleted
    ? el('button', { type: 'button', className: 'btn btn-small', dataset: { action: 'end-silence' }, text: 'End' })
    : null;
  const row = el('tr', { dataset: { silenceId: s.id, active: s.active ? 'true' : 'false', recurring: s.recurrence ? 'true' : 'false' } },
    el('td', { className: 'wrap', text: matchesText(s) }),
    el('td', null, timeAbs(s.ends_at)),
    el('td', { className: 'wrap', text: s.recurrence ? recurrenceText(s.recurrence) : '—' }),
    el('td', { text: s.active ? 'holding' : 'waiting' }),
    el('td', { className: 'wrap', text: s.comment || '' }),
    el('td', null, end));
  if (end) end.addEventListener('click', () => endSilence(s.id, end));
  return row;
}

function renderSilences(items) {
  setText('#silences-count', String(items.length));
  $('#silences tbody').replaceChildren(...items.map(silenceRow));
  show($('#silences-none'), items.length === 0);
  show($('#silences-table').closest('.table-wrap'), items.length > 0);
  show($('#silence-form'), isAdmin());
  markLoaded('#silences');
}

async function endSilence(id, button) {
  button.disabled = true;
  try {
    await api.delete(`/api/silences/${encodeURIComponent(id)}`);
    await runLoads([['silences', loadSilences]]);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    button.disabled = false;
    setSectionError('silences', `Ending silence ${id} failed: ${err instanceof ApiError ? err.describe() : err}`);
  }
}

export async function onSilenceSubmit(ev) {
  ev.preventDefault();
  const { body, error } = silenceBody({
    rule: $('#silence-rule').value, platform: $('#silence-platform').value, severity: $('#silence-severity').value,
    days: $('#silence-days').value, comment: $('#silence-comment').value, from: $('#silence-from').value,
    to: $('#silence-to').value, timeZone: $('#silence-zone').value,
    weekdays: $$('#silence-weekdays input:checked').map((box) => box.value),
  });
  if (error) {
    setSectionError('silences', error);
    return;
  }
  const submit = $('#silence-create');
  submit.disabled = true;
  try {
    await api.post('/api/silences', body);
    setSectionError('silences', '');
    $('#silence-comment').value = '';
    await runLoads([['silences', loadSilences]]);
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) {
      setSectionError('silences', `The silence was not created: ${err instanceof ApiError ? err.describe() : err}`);
    }
  } finally {
    submit.disabled = false;
  }
}
