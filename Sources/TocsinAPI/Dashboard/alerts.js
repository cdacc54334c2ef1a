/**
 * The "Active alerts" section (#active-alerts): the list of open alerts,
 * updated in place from GET /api/monitoring/alerts and the live stream, and
 * the admin's Acknowledge / Resolve buttons with their inline note form,
 * the inhibiting alert of an inhibited one, and each alert's delivery
 * ledger (Deliveries). Also keeps the page title's count of firing alerts.
 */

import { ApiError, api } from './api.js';
import { OPEN_STATUSES } from './config.js';
import { deliveriesButton } from './deliveries.js';
import {
  $, el, fill, markLoaded, platformChip, setProps, severityBadge, show, statusPill, timeAgo,
} from './dom.js';
import { fmtInt, isNum } from './format.js';
import { scheduleHistoryRefresh } from './history.js';
import { begin, runLoads } from './loading.js';
import { alertNote, compareAlerts, externalLabelsText, fmtRuleValue, isExternal } from './model.js';
import { notePlatforms } from './platforms.js';
import { isAdmin, state } from './state.js';
import { safeUrl } from './url-state.js';

export async function loadActiveAlerts() {
  const current = begin('alerts');
  const data = await api.get('/api/monitoring/alerts', { status: OPEN_STATUSES, limit: 200 });
  if (!current()) return;
  state.activeAlerts = new Map();
  for (const alert of data.alerts || []) {
    if (alert && isNum(alert.id) && alert.status !== 'resolved') state.activeAlerts.set(alert.id, alert);
  }
  notePlatforms([...state.activeAlerts.values()].map((a) => a.platform));
  renderActiveAlerts();
}

/** Reads the active alerts again (after a stream reconnect, a conflict, or an answer without the alert). */
export function reloadActiveAlerts() {
  return runLoads([['alerts', loadActiveAlerts]]);
}

/**
 * Keyed update of #active-alerts: existing items are updated in place so an
 * open note form (and what is typed in it) survives live updates.
 */
export function renderActiveAlerts() {
  const list = $('#active-alerts');
  const alerts = [...state.activeAlerts.values()].sort(compareAlerts);
  const existing = new Map(Array.from(list.children, (li) => [li.dataset.alertId, li]));
  alerts.forEach((alert, index) => {
    const key = String(alert.id);
    let item = existing.get(key);
    if (item) existing.delete(key);
    else {
      item = el('li', { className: 'alert' },
        el('div', { className: 'alert-main' }), el('div', { className: 'alert-actions' }), el('div', { className: 'alert-form-slot' }),
        el('div', { className: 'alert-deliveries' }));
    }
    updateAlertItem(item, alert);
    if (list.children[index] !== item) list.insertBefore(item, list.children[index] || null);
  });
  for (const item of existing.values()) item.remove();
  if (state.noteForm && !state.activeAlerts.has(state.noteForm.alertId)) state.noteForm = null;

  const firing = alerts.filter((a) => a.status === 'firing').length;
  const count = $('#active-alerts-count');
  count.textContent = String(alerts.length);
  count.dataset.alerting = firing > 0 ? 'true' : 'false';
  show($('#no-active-alerts'), alerts.length === 0);
  markLoaded('#alerts-section');
  document.title = firing > 0 ? `(${firing}) Tocsin` : 'Tocsin';
}

/** The text of an alert: title line, description, value against threshold, since, who acknowledged, note. */
function alertContent(alert) {
  // An external alert (Prometheus, Grafana, amtool) has labels, not a value.
  const value = isExternal(alert)
    ? el('span', { className: 'alert-value', text: externalLabelsText(alert) || 'no labels' })
    : el('span', { className: 'alert-value' },
      el('span', { className: 'over', text: fmtRuleValue(alert.rule, alert.value, state.rules) }),
      ` ${alert.comparison || '>'} ${fmtRuleValue(alert.rule, alert.threshold, state.rules)}`,
      isNum(alert.samples) ? ` · ${fmtInt(alert.samples)} samples` : '');
  const runbook = safeUrl(alert.runbook_url, location.origin);
  const group = alert.group_key && alert.group_key !== 'all' ? el('span', { className: 'muted', text: alert.group_key }) : null;
  return [
    el('div', { className: 'alert-title' },
      severityBadge(alert.severity),
      el('span', { className: 'alert-rule', text: alert.rule || 'unnamed rule' }),
      isExternal(alert) ? el('span', { className: 'muted', text: 'external', title: 'posted to /api/v2/alerts' }) : null,
      alert.platform ? platformChip(alert.platform) : group,
      statusPill(alert.status)),
    alert.description ? el('div', { className: 'alert-desc', text: alert.description }) : null,
    el('div', { className: 'alert-meta' },
      el('span', null, isExternal(alert) ? 'Labels ' : 'Value ', value),
      el('span', null, 'Since ', timeAgo(alert.fired_at || alert.started_at)),
      alert.status === 'acknowledged'
        ? el('span', null, 'Acknowledged by ', el('strong', { text: alert.acknowledged_by || 'unknown' }), ' ', timeAgo(alert.acknowledged_at))
        : null,
      runbook ? el('a', { href: runbook, target: '_blank', rel: 'noopener noreferrer', text: 'Runbook' }) : null),
    alertNote(alert) ? el('div', { className: 'alert-note', text: `Note: ${alertNote(alert)}` }) : null,
    isNum(alert.inhibited_by) ? el('div', { className: 'alert-inhibited', dataset: { inhibitedBy: alert.inhibited_by } },
      'Inhibited by ', inhibitorText(alert.inhibited_by), ': not notified while it is open') : null,
  ];
}

/** "alert #12 (token_refresh_failures · tiktok)" when that alert is on the page. */
function inhibitorText(id) {
  const source = state.activeAlerts.get(id);
  const name = source ? ` (${source.rule}${source.platform ? ` · ${source.platform}` : ''})` : '';
  return el('strong', { text: `alert #${id}${name}` });
}

/** Acknowledge (unless already acknowledged) and Resolve, for admins only. */
function alertButtons(alert) {
  if (!isAdmin()) return [];
  const button = (action, text) => el('button', {
    type: 'button', className: 'btn btn-small', dataset: { action }, text,
    on: { click: () => openNoteForm(alert.id, action) },
  });
  return [alert.status !== 'acknowledged' ? button('acknowledge', 'Acknowledge') : null, button('resolve', 'Resolve')];
}

function updateAlertItem(item, alert) {
  setProps(item, {
    dataset: {
      alertId: alert.id, rule: alert.rule || '', severity: alert.severity || '',
      status: alert.status || '', platform: alert.platform || '',
    },
  });
  const [main, actions, formSlot, deliveriesSlot] = item.children;
  // The note form stays only while it is the open one and its action still applies: it goes
  // once submitted, or when the alert got acknowledged (e.g. by someone else) under an open
  // acknowledge form.
  const open = state.noteForm && state.noteForm.alertId === alert.id ? state.noteForm : null;
  if (open && open.action === 'acknowledge' && alert.status === 'acknowledged') state.noteForm = null;
  if (formSlot.firstChild && !(open && state.noteForm === open)) formSlot.replaceChildren();

  fill(main, alertContent(alert));
  fill(actions, alertButtons(alert));
  actions.append(deliveriesButton(alert.id, deliveriesSlot));

  if (state.flash.has(alert.id)) {
    state.flash.delete(alert.id);
    item.classList.remove('flash');
    void item.offsetWidth; // restart the animation
    item.classList.add('flash');
  }
}

function alertItem(id) {
  return $(`#active-alerts > li[data-alert-id="${Number(id)}"]`);
}

/** The inline "optional note" form for acknowledge / resolve (instead of window.prompt). */
function openNoteForm(alertId, action) {
  closeNoteForm();
  const item = alertItem(alertId);
  if (!item) return;
  const label = action === 'resolve' ? 'Resolve' : 'Acknowledge';
  const inputId = `note-${alertId}-${action}`;
  const input = el('input', {
    id: inputId, name: 'note', type: 'text', maxlength: '1000', autocomplete: 'off',
    placeholder: action === 'resolve' ? 'e.g. fixed by rolling back' : 'e.g. looking into it',
  });
  const error = el('p', { className: 'form-error', role: 'alert', hidden: true });
  const submit = el('button', { type: 'submit', className: 'btn btn-small btn-primary', text: label });
  const cancel = el('button', {
    type: 'button', className: 'btn btn-small', dataset: { action: 'cancel' }, text: 'Cancel', on: { click: closeNoteForm },
  });
  const form = el('form', { className: 'note-form', dataset: { action }, novalidate: true },
    el('div', { className: 'field' }, el('label', { for: inputId, text: `${label} — note (optional)` }), input),
    el('div', { className: 'note-form-buttons' }, submit, cancel),
    error);
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    submitAlertAction(alertId, action, input.value.trim(), { form, submit, cancel, error });
  });
  form.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') closeNoteForm();
  });
  item.querySelector('.alert-form-slot').replaceChildren(form);
  state.noteForm = { alertId, action };
  input.focus();
}

function closeNoteForm() {
  if (!state.noteForm) return;
  const item = alertItem(state.noteForm.alertId);
  state.noteForm = null;
  if (item) {
    item.querySelector('.alert-form-slot').replaceChildren();
    const button = item.querySelector('.alert-actions button');
    if (button) button.focus();
  }
}

/** What the note form says when the action failed. */
function actionErrorText(err) {
  if (!(err instanceof ApiError)) return String(err);
  if (err.status === 409) return 'This alert was already resolved (or acknowledged) by someone else. Refreshing…';
  if (err.status === 403) return `Not allowed: ${err.message}`;
  return err.describe();
}

async function submitAlertAction(alertId, action, note, { form, submit, cancel, error }) {
  submit.disabled = true;
  cancel.disabled = true;
  error.hidden = true;
  try {
    const body = { id: alertId, action };
    if (note) body.note = note;
    const data = await api.post('/api/monitoring/alerts', body);
    // The submit button was disabled meanwhile, which may have moved the focus to the body.
    const hadFocus = form.contains(document.activeElement) || document.activeElement === document.body;
    if (state.noteForm && state.noteForm.alertId === alertId && state.noteForm.action === action) state.noteForm = null;
    if (data && data.alert) applyAlert(data.alert, action === 'resolve' ? 'alert.resolved' : 'alert.acknowledged');
    else reloadActiveAlerts(); // no alert in the answer: read the list again
    form.remove(); // whatever the answer held, the submitted form is done
    const item = alertItem(alertId);
    const next = item && item.querySelector('.alert-actions button');
    if (hadFocus && next) next.focus();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    error.textContent = actionErrorText(err);
    error.hidden = false;
    submit.disabled = false;
    cancel.disabled = false;
    if (err instanceof ApiError && err.status === 409) setTimeout(reloadActiveAlerts, 1500);
  }
}

/** Inserts, updates or removes one alert in the active list (from the stream or an action's answer). */
export function applyAlert(alert, type) {
  if (!alert || !isNum(alert.id)) return;
  if (type === 'alert.resolved' || alert.status === 'resolved') {
    state.activeAlerts.delete(alert.id);
  } else {
    state.activeAlerts.set(alert.id, alert);
    state.flash.add(alert.id);
    notePlatforms([alert.platform]);
  }
  renderActiveAlerts();
  scheduleHistoryRefresh();
}
