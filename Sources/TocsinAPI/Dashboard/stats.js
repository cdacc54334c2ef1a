/**
 * The summary of the window, from GET /api/monitoring/metrics: the four
 * stat cards (#stats) and the "Metrics by platform" cards
 * (#platform-metrics). Also where the page learns the server's clock.
 */

import { api } from './api.js';
import { $, el, markLoaded, setText, swatch } from './dom.js';
import { dayTimeFormat, fmtInt, fmtPercent, fmtSeconds, isNum, parseTime } from './format.js';
import { begin } from './loading.js';
import { GROUPS, isBadMetric, thresholdFor } from './model.js';
import { notePlatforms } from './platforms.js';
import { colorFor, state } from './state.js';

export const STAT_IDS = ['stat-upload-success-rate', 'stat-oauth-failures', 'stat-webhook-latency', 'stat-token-failures'];

export async function loadSummary() {
  const current = begin('summary');
  const { window, platform } = state.filters;
  const data = await api.get('/api/monitoring/metrics', { window, platform: platform === 'all' ? null : platform });
  if (!current()) return;
  const until = parseTime(data && data.until);
  if (Number.isFinite(until)) state.clockSkewMs = until - Date.now();
  state.summary = data;
  notePlatforms((data.platforms || []).map((p) => p && p.platform));
  renderStats();
  renderPlatformMetrics();
}

/** One stat card: its text, data-value (the raw number or ""), data-state="bad", and the line under it. */
export function setStat(id, text, raw, detail, bad) {
  const node = $(`#${id}`);
  node.textContent = text;
  node.dataset.value = isNum(raw) ? String(raw) : '';
  if (bad) node.dataset.state = 'bad';
  else delete node.dataset.state;
  setText(`#${id}-detail`, detail);
}

export function renderStats() {
  const totals = (state.summary && state.summary.totals) || {};
  const upload = totals.upload || {};
  const oauth = totals.oauth || {};
  const webhook = totals.webhook || {};
  const token = totals.token_refresh || {};
  const uploadLimit = thresholdFor('upload', state.rules).value;
  const latencyLimit = thresholdFor('webhook', state.rules).value;

  const uploads = (upload.success || 0) + (upload.failure || 0);
  const uploadBad = isNum(upload.success_rate) && 1 - upload.success_rate > uploadLimit;
  setStat('stat-upload-success-rate', fmtPercent(upload.success_rate), upload.success_rate,
    uploads
      ? `${fmtInt(upload.success)} of ${fmtInt(uploads)} uploads${uploadBad ? ` · error rate over ${fmtPercent(uploadLimit)}` : ''}`
      : 'No uploads in the window',
    uploadBad);

  const logins = (oauth.success || 0) + (oauth.failure || 0);
  setStat('stat-oauth-failures', fmtInt(oauth.failure ?? 0), oauth.failure ?? 0,
    logins ? `of ${fmtInt(logins)} logins · ${fmtPercent(oauth.success_rate)} succeeded` : 'No OAuth logins in the window', false);

  const latencyBad = isNum(webhook.avg_latency_s) && webhook.avg_latency_s > latencyLimit;
  setStat('stat-webhook-latency', fmtSeconds(webhook.avg_latency_s), webhook.avg_latency_s,
    webhook.received || isNum(webhook.avg_latency_s)
      ? `p95 ${fmtSeconds(webhook.p95_latency_s)} · ${fmtInt(webhook.received || 0)} received`
      : 'No webhooks in the window',
    latencyBad);

  const refreshes = (token.success || 0) + (token.failure || 0);
  setStat('stat-token-failures', fmtInt(token.failure ?? 0), token.failure ?? 0,
    refreshes ? `of ${fmtInt(refreshes)} refreshes` : 'No token refreshes in the window', false);
}

function metricsCard(entry, { title, totals }) {
  return el('article', {
    className: totals ? 'platform-card totals-card' : 'platform-card',
    dataset: totals ? { totals: 'true' } : { platform: entry.platform },
  },
  el('h3', null, totals ? null : swatch(colorFor(entry.platform)), title),
  el('div', { className: 'group-grid' }, GROUPS.map(([key, label, fields]) => {
    const group = entry[key] || {};
    return el('section', { className: 'group', dataset: { group: key } },
      el('h4', { text: label }),
      el('dl', null, fields.map(([field, name, format]) => [
        el('dt', { text: name }),
        el('dd', {
          dataset: { field, state: isBadMetric(key, field, group[field], state.rules) ? 'bad' : null },
          text: format(group[field]),
        }),
      ])));
  })));
}

export function renderPlatformMetrics() {
  const summary = state.summary;
  const grid = $('#platform-metrics');
  if (!summary) return;
  const platforms = (summary.platforms || []).filter((p) => p && typeof p.platform === 'string');
  const cards = platforms.map((p) => metricsCard(p, { title: p.platform }));
  if (state.filters.platform === 'all' && summary.totals && platforms.length !== 1) {
    cards.push(metricsCard(summary.totals, { title: 'All platforms', totals: true }));
  }
  grid.replaceChildren(...cards);
  markLoaded('#platforms-section');
  const since = parseTime(summary.since);
  const until = parseTime(summary.until);
  setText('#platforms-range', Number.isFinite(since) && Number.isFinite(until)
    ? `${dayTimeFormat.format(since)} – ${dayTimeFormat.format(until)}` : '');
}
