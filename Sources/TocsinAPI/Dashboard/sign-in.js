/**
 * Signing in and out: which view shows (boot, login form, dashboard), the
 * session check at start (GET /monitoring/session, retried while the API is
 * unreachable), exchanging an API key for the session cookie, starting the
 * dashboard for a session, and forgetting everything when it ends.
 */

import { ApiError, request } from './api.js';
import { FIRST_BACKOFF_MS, MAX_BACKOFF_MS } from './config.js';
import { $, $$, setPendingText, setText, show } from './dom.js';
import { updateEmptyState } from './empty-state.js';
import { syncFilterControls, writeFiltersToUrl } from './filters.js';
import { validSession } from './model.js';
import { refreshAll } from './refresh.js';
import { STAT_IDS, setStat } from './stats.js';
import { clearSessionData, isAdmin, state } from './state.js';
import { closeStream, connectStream, setStreamState } from './stream.js';

export function setView(view) {
  document.body.dataset.view = view;
  show($('#boot'), view === 'boot');
  show($('#login-view'), view === 'login');
  show($('#dashboard'), view === 'dashboard');
  show($('#footer'), view === 'dashboard');
  show($('#session-bar'), view === 'dashboard');
}

/** Nothing to show yet: say the API cannot be reached, and try again with backoff. */
function retrySessionCheck(err) {
  state.backoffMs = state.backoffMs ? Math.min(state.backoffMs * 2, MAX_BACKOFF_MS) : FIRST_BACKOFF_MS;
  setText('#boot-message', "Cannot reach Tocsin's API. Retrying…");
  setText('#error-banner-detail', `Last error: ${err.describe()}`);
  setText('#error-banner-next', `Next attempt in ${Math.round(state.backoffMs / 1000)} s`);
  show($('#error-banner'), true);
  state.bootTimer = setTimeout(checkSession, state.backoffMs);
}

export async function checkSession() {
  clearTimeout(state.bootTimer);
  try {
    const data = await request('GET', '/monitoring/session', { auth: false });
    if (!validSession(data)) throw new ApiError('the session answer is not what the dashboard expects', { unreachable: true });
    show($('#error-banner'), false);
    startDashboard(data);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      show($('#error-banner'), false);
      showLogin();
    } else if (err instanceof ApiError && err.unreachable) {
      retrySessionCheck(err);
    } else {
      showLogin(err instanceof ApiError ? err.describe() : String(err));
    }
  }
}

function showLogin(message) {
  setView('login');
  const error = $('#login-error');
  error.textContent = message || '';
  error.hidden = !message;
  $('#login-key').focus();
}

export async function onLoginSubmit(event) {
  event.preventDefault();
  const input = $('#login-key');
  const button = $('#login-submit');
  const error = $('#login-error');
  const key = input.value.trim();
  if (!key) {
    error.textContent = 'Enter an API key.';
    error.hidden = false;
    input.focus();
    return;
  }
  button.disabled = true;
  button.textContent = 'Signing in…';
  error.hidden = true;
  try {
    const data = await request('POST', '/monitoring/session', { body: { key }, auth: false });
    if (!validSession(data)) throw new ApiError('the server answered the sign-in with an unexpected body', { status: 200 });
    input.value = '';
    startDashboard(data);
  } catch (err) {
    error.textContent = !(err instanceof ApiError) ? String(err)
      : err.unreachable ? `Cannot reach Tocsin's API: ${err.describe()}`
        : err.message;
    error.hidden = false;
    input.select();
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
}

function startDashboard(session) {
  state.session = session;
  state.sessionGen += 1;
  state.failing = null;
  state.backoffMs = 0;
  setText('#session-name', session.name);
  const admin = isAdmin();
  const role = $('#session-role');
  role.dataset.role = admin ? 'admin' : 'read';
  role.textContent = admin ? 'admin' : 'read-only';
  show($('#run-checks'), admin);
  setPendingText('Loading…');
  setView('dashboard');
  syncFilterControls();
  writeFiltersToUrl();
  updateEmptyState();
  connectStream();
  refreshAll();
}

/** Any API call that answers 401 lands here: drop the session and ask for a key again. */
export function onSessionEnded(message) {
  if (!state.session) return;
  teardown();
  showLogin(`Your session has ended (${message}). Sign in again.`);
}

export async function logout() {
  const button = $('#logout');
  button.disabled = true;
  try {
    await request('DELETE', '/monitoring/session', { auth: false });
  } catch (_) {
    // Signed out locally even if the server could not be told; the cookie expires on its own.
  } finally {
    button.disabled = false;
  }
  teardown();
  showLogin();
}

/** Stops timers and the stream and forgets every piece of data of the old session. */
function teardown() {
  state.session = null;
  state.sessionGen += 1;
  clearTimeout(state.refreshTimer);
  clearTimeout(state.historyTimer);
  clearInterval(state.bannerTimer);
  state.bannerTimer = null;
  closeStream();
  state.streamEverLive = false;
  setStreamState('offline');
  state.failing = null;
  state.backoffMs = 0;
  show($('#error-banner'), false);
  clearSessionData();
  for (const selector of ['#active-alerts', '#platform-metrics', '#events-table tbody', '#worker-status tbody',
    '#dead-letters tbody', '#alert-history tbody', '#run-checks-result']) {
    $(selector).replaceChildren();
  }
  for (const figure of $$('.chart-card')) {
    $('.chart-body', figure).replaceChildren();
    $('.legend', figure).replaceChildren();
  }
  for (const id of STAT_IDS) setStat(id, '—', null, '', false);
  $$('[data-section-error]').forEach((node) => { node.hidden = true; });
  $$('[data-loaded]').forEach((node) => { node.dataset.loaded = 'false'; });
  document.title = 'Tocsin';
  delete document.body.dataset.ready;
}
