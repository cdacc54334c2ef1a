/**
 * The alert rules (GET /api/rules): they give the charts and cards their
 * thresholds and the alerts their value formats, and fill the history's
 * rule suggestions (#rule-names). When they arrive, whatever already shows
 * data is redrawn with them.
 */

import { ApiError, api } from './api.js';
import { renderActiveAlerts } from './alerts.js';
import { renderChart } from './chart-view.js';
import { $, el } from './dom.js';
import { renderHistory } from './history.js';
import { begin } from './loading.js';
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
