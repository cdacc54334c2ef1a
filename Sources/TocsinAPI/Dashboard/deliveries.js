/**
 * An alert's detail: its delivery ledger (GET /api/monitoring/alerts/{id}/deliveries)
 * shown under the alert when its "Deliveries" button is pressed — for every
 * route and channel, what happened and why (routed, grouped into message M,
 * inhibited by alert A, silenced, muted by interval I, held by the rate
 * limit, escalated, sent with its status, retried, dead).
 */

import { ApiError, api } from './api.js';
import { el, fill, timeAbs } from './dom.js';
import { fullFormat, parseTime } from './format.js';
import { deliveryOutcome, deliveryText, deliveryWhere } from './ledger.js';

const formatTime = (iso) => {
  const ms = parseTime(iso);
  return ms == null ? String(iso) : fullFormat.format(new Date(ms));
};

/** The button that toggles the ledger of `alertId` in `slot`. */
export function deliveriesButton(alertId, slot) {
  const button = el('button', {
    type: 'button', className: 'btn btn-small btn-quiet', dataset: { action: 'deliveries' }, text: 'Deliveries',
    'aria-expanded': slot.dataset.open === 'true' ? 'true' : 'false',
  });
  button.addEventListener('click', () => toggle(alertId, slot, button));
  return button;
}

async function toggle(alertId, slot, button) {
  if (slot.dataset.open === 'true') {
    slot.dataset.open = 'false';
    slot.replaceChildren();
    button.setAttribute('aria-expanded', 'false');
    return;
  }
  slot.dataset.open = 'true';
  button.setAttribute('aria-expanded', 'true');
  fill(slot, el('p', { className: 'muted small', text: 'Loading deliveries…' }));
  try {
    const data = await api.get(`/api/monitoring/alerts/${encodeURIComponent(alertId)}/deliveries`);
    if (slot.dataset.open !== 'true') return;
    fill(slot, ledgerView(Array.isArray(data.deliveries) ? data.deliveries : []));
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    fill(slot, el('p', { className: 'section-error', text: `Deliveries could not be read: ${err instanceof ApiError ? err.describe() : err}` }));
  }
}

function ledgerView(entries) {
  const rows = entries.map((e) => el('tr', { dataset: { event: e.event || '', channel: e.channel || '' } },
    el('td', null, timeAbs(e.at)),
    el('td', { text: deliveryWhere(e) }),
    el('td', { className: 'wrap', text: deliveryText(e, formatTime) })));
  return [
    el('p', { className: 'small', dataset: { deliveryOutcome: 'true' }, text: deliveryOutcome(entries) }),
    rows.length ? el('div', { className: 'table-wrap' },
      el('table', { className: 'data-table deliveries-table' },
        el('thead', null, el('tr', null,
          el('th', { scope: 'col', text: 'At' }), el('th', { scope: 'col', text: 'Route → channel' }),
          el('th', { scope: 'col', text: 'What happened' }))),
        el('tbody', null, ...rows))) : null,
  ];
}
