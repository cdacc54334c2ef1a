/**
 * The alert rules (GET /api/rules): they give the charts and cards their
 * thresholds and the alerts their value formats, and fill the history's
 * rule suggestions (#rule-names) and the "Alert rules" section
 * (#rules-section: condition, filter, groups, a composite's inputs, an
 * SLO's error budget, health). When they arrive, whatever already shows
 * data is redrawn with them.
 */

import { ApiError, api } from './api.js';
import { renderActiveAlerts } from './alerts.js';
import { renderChart } from './chart-view.js';
import { $, el, markLoaded, setText, show } from './dom.js';
import { renderHistory } from './history.js';
import { begin } from './loading.js';
import { budgetLines, conditionText, filterText, groupsText, healthOf, inputsOf } from './rule-view.js';
import { renderPlatformMetrics, renderStats } from './stats.js';
import { state } from './state.js';

export async function loadRules() {
  const current = begin('rules');
  let rules = [];
  try {
    const data = await api.get('/api/rules');
    rules = data && Array.isArray(data.rules) ? data.rules.filter((r) => r && typeof r.name === 'string') : [];
  } catch (err) {
    // Thresholds fall back to the defaults; anything but an outage is not worth a message.
    if (!(err instanceof ApiError) || err.unreachable || err.status === 401) throw err;
  }
  if (!current()) return;
  state.rules = rules;
  renderRuleOptions();
  renderRuleView();
  // Thresholds and value formats come from the rules: redraw what already shows data.
  if (state.summary) {
    renderStats();
    renderPlatformMetrics();
  }
  if (state.series.upload) renderChart('upload');
  if (state.series.webhook) renderChart('webhook');
  if (state.activeAlerts.size) renderActiveAlerts();
  if (state.history.rows) renderHistory();
}

function renderRuleOptions() {
  const list = $('#rule-names');
  list.replaceChildren(...(state.rules || []).map((r) => el('option', { value: r.name })));
}

function dashOr(text) {
  return text ? el('span', { text }) : el('span', { className: 'dash', text: '—' });
}

function ruleRow(rule) {
  const health = healthOf(rule);
  const budgets = budgetLines(rule);
  const inputs = inputsOf(rule);
  return el('tr', { dataset: { rule: rule.name, health: health.state } },
    el('td', null, el('strong', { className: 'mono', text: rule.name }),
      rule.description ? el('span', { className: 'rule-detail muted small', text: rule.description }) : null),
    el('td', { text: rule.kind || '—' }),
    el('td', { className: 'mono small' }, dashOr(conditionText(rule))),
    el('td', { className: 'mono small' }, dashOr(filterText(rule))),
    el('td', { className: 'mono small' }, dashOr(groupsText(rule))),
    el('td', { className: 'mono small' }, inputs.length ? el('ul', { className: 'rule-lines' }, inputs.map((n) => el('li', { text: n }))) : dashOr('')),
    el('td', { className: 'small' }, budgets.length
      ? el('ul', { className: 'rule-lines' }, budgets.map((b) => el('li', { dataset: { low: b.low ? 'true' : 'false' }, text: b.text })))
      : dashOr('')),
    el('td', null, el('span', { className: 'state-badge', dataset: { state: health.state }, text: health.text }),
      health.detail ? el('span', { className: 'rule-detail muted small', text: health.detail }) : null));
}

function renderRuleView() {
  const rules = [...(state.rules || [])].sort((a, b) =>
    Number(b.health === 'failing') - Number(a.health === 'failing') || String(a.name).localeCompare(String(b.name)));
  $('#rules-table tbody').replaceChildren(...rules.map(ruleRow));
  setText('#rules-count', String(rules.length));
  const failing = rules.filter((r) => r.health === 'failing').length;
  setText('#rules-failing', failing ? `${failing} failing` : '');
  show($('#rules-none'), rules.length === 0);
  show($('#rules-table').closest('.table-wrap'), rules.length > 0);
  markLoaded('#rules-section');
}
