/**
 * The first-run panel (#empty-state): shown instead of the metrics, charts
 * and events when the window holds no event at all, with a ready-to-copy
 * curl command that sends the first one.
 */

import { WINDOW_LABEL } from './config.js';
import { $, setText, show } from './dom.js';
import { totalsAreZero } from './model.js';
import { state } from './state.js';

export function updateEmptyState() {
  const empty = Boolean(state.summary && totalsAreZero(state.summary.totals)
    && state.events.rows && state.events.rows.length === 0 && state.events.stack.length === 0);
  const { platform, window } = state.filters;
  setText('#empty-state-scope', `in ${WINDOW_LABEL[window]}${platform === 'all' ? '' : ` for ${platform}`}`);
  setText('#empty-state-curl', `curl -X POST "${location.origin}/api/metrics" -H "Authorization: Bearer $TOCSIN_KEY" `
    + `-H "Content-Type: application/json" -d '{"name":"upload.success","platform":"tiktok"}'`);
  show($('#empty-state'), empty);
  for (const id of ['platforms-section', 'charts-section', 'events-section']) show(document.getElementById(id), !empty);
}

export async function copyCurl() {
  const button = $('#copy-curl');
  const text = $('#empty-state-curl').textContent;
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = 'Copied';
  } catch (_) {
    // No clipboard access (plain http on another host): select the text instead.
    const range = document.createRange();
    range.selectNodeContents($('#empty-state-curl'));
    const selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    button.textContent = 'Selected';
  }
  setTimeout(() => { button.textContent = 'Copy'; }, 2000);
}
