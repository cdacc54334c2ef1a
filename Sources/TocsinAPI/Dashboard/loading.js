/**
 * Running the sections' loaders: out-of-order answers dropped (begin),
 * per-section error messages, batches of loaders run together, and the
 * "Cannot reach Tocsin's API" banner with its backoff countdown when a
 * batch found the API unreachable. What happens next (the retry timer, a
 * full refresh after an outage) is refresh.js's, through configureLoading.
 */

import { ApiError } from './api.js';
import { FIRST_BACKOFF_MS, MAX_BACKOFF_MS } from './config.js';
import { $, $$, setPendingText, setText, show } from './dom.js';
import { clockFormat } from './format.js';
import { state } from './state.js';

let hooks = { reschedule: () => {}, onRecovered: () => {} };

/** reschedule(): arm the next refresh; onRecovered(): a partial load got through after an outage. */
export function configureLoading({ reschedule, onRecovered }) {
  hooks = { reschedule, onRecovered };
}

/**
 * Guards against out-of-order answers: `const current = begin('events')`,
 * then after the await `if (!current()) return;` drops an answer that a
 * newer request for the same section (or a sign-out) has superseded.
 */
export function begin(key) {
  const n = (state.seq[key] || 0) + 1;
  state.seq[key] = n;
  const gen = state.sessionGen;
  return () => state.seq[key] === n && state.sessionGen === gen && state.session !== null;
}

export function setSectionError(section, message) {
  for (const node of $$(`[data-section-error="${section}"]`)) {
    node.textContent = message || '';
    node.hidden = !message;
  }
}

/**
 * Runs one section's loader. Connectivity failures propagate (they switch
 * the whole page to the retrying state); other errors are shown in the
 * section, whose last data stays on screen.
 */
async function guarded(section, loader) {
  try {
    await loader();
    setSectionError(section, null);
  } catch (err) {
    if (!(err instanceof ApiError)) {
      console.error(`Tocsin dashboard: ${section}`, err); // a bug in the page: keep the rest of it working
      setSectionError(section, `This section failed to render: ${err && err.message}`);
      return;
    }
    if (err.status === 401) return; // the login form is already shown
    if (err.unreachable) throw err;
    setSectionError(section, err.describe());
  }
}

/** Runs loaders ([section, loader] pairs) concurrently; returns true when the API answered all of them. */
export async function runLoads(loads, { full = false } = {}) {
  state.loading += 1;
  document.body.dataset.loading = 'true';
  let results;
  try {
    results = await Promise.allSettled(loads.map(([section, loader]) => guarded(section, loader)));
  } finally {
    state.loading -= 1;
    if (!state.loading) delete document.body.dataset.loading;
  }
  if (!state.session) return false;
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) {
    markUnreachable(failure.reason);
    return false;
  }
  markReachable(full);
  return true;
}

function markUnreachable(err) {
  state.backoffMs = state.failing ? Math.min(state.backoffMs * 2, MAX_BACKOFF_MS) : FIRST_BACKOFF_MS;
  state.failing = err;
  const at = clockFormat.format(Date.now());
  setText('#error-banner-detail', `Last error (${at}): ${err.describe()}`);
  setPendingText('No data yet: waiting for the API.');
  show($('#error-banner'), true);
  hooks.reschedule();
}

function markReachable(full) {
  if (!state.failing) return;
  state.failing = null;
  state.backoffMs = 0;
  show($('#error-banner'), false);
  clearInterval(state.bannerTimer);
  state.bannerTimer = null;
  // A partial load got through after an outage: bring every section up to date.
  if (!full) hooks.onRecovered();
}

/** "Next attempt in 12 s" in the banner, ticking every second until the API answers again. */
export function startBannerCountdown() {
  const tick = () => {
    const seconds = Math.max(0, Math.ceil((state.nextRefreshAt - Date.now()) / 1000));
    setText('#error-banner-next', state.loading ? 'Retrying…' : `Next attempt in ${seconds} s`);
  };
  tick();
  if (!state.bannerTimer) state.bannerTimer = setInterval(tick, 1000);
}
