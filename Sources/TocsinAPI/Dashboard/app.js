/*
 * Tocsin dashboard — plain ES2020, no build step, no dependencies, no network
 * access beyond the same-origin API. Works under `Content-Security-Policy:
 * default-src 'self'`: no inline scripts or handlers, no eval, no innerHTML
 * (every piece of server data goes into the DOM through textContent or
 * attributes), inline styles only through the CSSOM.
 *
 * DOM contract — stable hooks for automated browser tests:
 *   body[data-view]              "boot" | "login" | "dashboard"
 *   body[data-ready="true"]      set after the first full refresh finished (successfully or not)
 *   body[data-loading="true"]    while any request batch is in flight
 *   #boot, #boot-message         shown until GET /monitoring/session answers
 *   #login-view, #login-form, #login-key, #login-submit, #login-error
 *   #dashboard                   the signed-in view
 *   #session-name, #session-role[data-role="admin"|"read"], #logout
 *   #stream-status[data-state]   "connecting" | "live" | "reconnecting" | "offline"
 *   #error-banner                hidden unless the API is unreachable (network error or 5xx);
 *                                #error-banner-detail (last error), #error-banner-next, #error-banner-retry
 *   #filter-platform, #filter-window, #filter-type   (mirrored in the URL: ?platform=&window=&type=)
 *   #refresh, #auto-refresh (checkbox), #export-csv, #export-json, #last-updated
 *   #active-alerts > li.alert[data-alert-id][data-rule][data-severity][data-status][data-platform]
 *                                admin only: button[data-action="acknowledge"|"resolve"];
 *                                the note form: form.note-form[data-action] > input[name="note"], button[type="submit"],
 *                                button[data-action="cancel"], .form-error
 *   #active-alerts-count, #no-active-alerts
 *   #stat-upload-success-rate, #stat-oauth-failures, #stat-webhook-latency, #stat-token-failures
 *                                text = displayed value ("—" when null); data-value = raw number or "";
 *                                the line under each: #stat-…-detail
 *   #empty-state, #empty-state-curl, #copy-curl
 *   #platform-metrics > .platform-card[data-platform] (and .totals-card[data-totals="true"]),
 *                                inside: [data-group="oauth"|"upload"|...] > dd[data-field]
 *   #chart-upload-error-rate, #chart-webhook-latency > .chart-body > svg[data-chart]
 *                                path.series-line[data-platform], line.threshold[data-threshold],
 *                                rect.hover-band > title (tooltips); .legend li[data-platform]
 *   #events-table tbody tr[data-event-id][data-name][data-platform], #events-none,
 *                                #events-prev, #events-next, #events-page
 *   #worker-status tbody tr[data-worker-id][data-stale], #workers-none, #run-checks (admin only),
 *                                #run-checks-result tr[data-outcome]
 *   #dead-letters (hidden when GET /api/notifications answers 404) tbody tr[data-notification-id],
 *                                button[data-action="retry"] (admin only), #dead-letters-none
 *   #alert-history tbody tr[data-alert-id][data-status][data-severity], #history-none,
 *                                #history-filters (#history-status, #history-severity, #history-rule,
 *                                #history-platform, #history-window), #history-prev, #history-next, #history-page
 *   [data-section-error="<section>"]  per-section message for errors that are not connectivity (e.g. 400)
 *   [data-loaded="false"|"true"] on each data section (#alerts-section, #platforms-section, the two chart
 *                                figures, #events-section, #worker-status, #dead-letters, #alert-history):
 *                                "false" until its first answer; a .pending-state placeholder shows meanwhile
 */
(() => {
  'use strict';

  // ------------------------------------------------------------------ constants

  const WINDOWS = ['15m', '1h', '24h', '7d'];
  const DEFAULT_WINDOW = '24h';
  const WINDOW_LABEL = { '15m': 'the last 15 minutes', '1h': 'the last hour', '24h': 'the last 24 hours', '7d': 'the last 7 days' };
  const BUCKET_FOR_WINDOW = { '15m': '1m', '1h': '1m', '24h': '5m', '7d': '1h' };
  const BUCKET_SECONDS = { '1m': 60, '5m': 300, '1h': 3600, '1d': 86400 };
  const BUCKET_LABEL = { '1m': '1-minute', '5m': '5-minute', '1h': 'hourly', '1d': 'daily' };
  // Event-type filter → the `name` prefix filter of GET /api/monitoring/events.
  const TYPE_PREFIX = {
    all: null, oauth: 'oauth.*', upload: 'upload.*', webhook: 'webhook.*',
    'token.refresh': 'token.refresh.*', api: 'api.*', worker: 'worker.*',
  };
  const KNOWN_PLATFORMS = ['tiktok', 'instagram'];
  const PLATFORM_RE = /^[a-z][a-z0-9_-]{0,63}$/;
  const REFRESH_MS = 30000;
  const FIRST_BACKOFF_MS = 2000;
  const MAX_BACKOFF_MS = 30000;
  const REQUEST_TIMEOUT_MS = 20000;
  const STREAM_SILENCE_MS = 45000; // three missed pings
  const EVENTS_PAGE_SIZE = 50;
  const HISTORY_PAGE_SIZE = 50;
  const SEVERITY_COLOR = { warning: '#FFA500', error: '#FF0000', critical: '#8B0000' };
  const SEVERITY_RANK = { critical: 0, error: 1, warning: 2 };
  const STATUS_RANK = { firing: 0, pending: 1, acknowledged: 2 };
  const PLATFORM_COLORS = { tiktok: '#0e7490', instagram: '#a21caf' };
  const EXTRA_COLORS = ['#4f46e5', '#15803d', '#475569', '#0369a1', '#6d28d9', '#be185d', '#854d0e'];
  const NO_PLATFORM_COLOR = '#64748b';

  // The two charts: which series to ask for, how to show values, which rule's
  // threshold to draw (with a fallback when GET /api/rules is unavailable).
  const CHARTS = {
    upload: {
      id: 'chart-upload-error-rate',
      section: 'chart-upload',
      query: { agg: 'ratio', numerator: 'upload.failure', denominator: 'upload.success,upload.failure' },
      fallbackThreshold: 0.05,
      fallbackSeverity: 'error',
      axis: (v) => fmtPercentAxis(v),
      value: (v) => fmtPercent(v),
      samplesNoun: 'uploads',
      what: 'upload error rate',
    },
    webhook: {
      id: 'chart-webhook-latency',
      section: 'chart-webhook',
      query: { agg: 'avg', name: 'webhook.latency' },
      fallbackThreshold: 5,
      fallbackSeverity: 'warning',
      axis: (v) => `${trimNumber(v, 2)} s`,
      value: (v) => fmtSeconds(v),
      samplesNoun: 'webhooks',
      what: 'average webhook latency',
    },
  };

  // ---------------------------------------------------------------------- state

  const state = {
    session: null,          // {name, scopes, csrf_token} while signed in
    sessionGen: 0,          // bumped at sign-out so late answers of an old session are dropped
    filters: { platform: 'all', window: DEFAULT_WINDOW, type: 'all' },
    autoRefresh: true,
    platforms: new Set(KNOWN_PLATFORMS),
    colorMap: new Map(),
    summary: null,
    series: { upload: null, webhook: null },
    events: { rows: null, next: null, cursor: null, stack: [] },
    history: { rows: null, next: null, cursor: null, stack: [] },
    activeAlerts: new Map(), // id → Alert
    rules: null,            // array once GET /api/rules answered (empty when unavailable)
    deadLettersSupported: true,
    clockSkewMs: 0,         // server clock − browser clock, from the summary's `until`
    lastUpdated: 0,
    failing: null,          // the ApiError that made the API look unreachable, or null
    backoffMs: 0,
    refreshTimer: null,
    nextRefreshAt: 0,
    bannerTimer: null,
    bootTimer: null,
    stream: null,
    streamState: 'offline',
    streamEverLive: false,
    streamRetryMs: 1000,
    streamTimer: null,
    streamLastMessage: 0,
    historyTimer: null,
    seq: Object.create(null), // latest request number per section
    noteForm: null,         // {alertId, action} of the open acknowledge/resolve form
    flash: new Set(),       // alert ids to highlight on the next render
    loading: 0,
  };

  // ------------------------------------------------------------------ DOM utils

  const $ = (selector, root = document) => root.querySelector(selector);
  const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
  const SVG_NS = 'http://www.w3.org/2000/svg';

  /** Appends children: strings become text nodes; null/false/undefined are skipped; arrays are flattened. */
  function append(node, children) {
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  /**
   * Sets properties on an element. `text` → textContent, `className`,
   * `dataset` (object), `on` (object of event listeners); anything else is an
   * attribute (true → empty attribute, false/null/undefined → skipped).
   */
  function setProps(node, props) {
    for (const [key, value] of Object.entries(props || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === 'text') node.textContent = String(value);
      else if (key === 'className') node.setAttribute('class', value);
      else if (key === 'dataset') {
        for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) node.dataset[k] = String(v);
      } else if (key === 'on') {
        for (const [type, handler] of Object.entries(value)) node.addEventListener(type, handler);
      } else node.setAttribute(key, value === true ? '' : String(value));
    }
    return node;
  }

  function el(tag, props, ...children) {
    return append(setProps(document.createElement(tag), props), children);
  }

  function svgEl(tag, props, ...children) {
    return append(setProps(document.createElementNS(SVG_NS, tag), props), children);
  }

  /** Like replaceChildren, but skips null/false children (replaceChildren would print "null"). */
  function fill(node, ...children) {
    node.replaceChildren();
    return append(node, children);
  }

  /** Marks a section as having received data at least once (hides its "Loading…" placeholder). */
  function markLoaded(selector) {
    const node = $(selector);
    if (node) node.dataset.loaded = 'true';
  }

  /** Text of the placeholders of sections that never received data. */
  function setPendingText(text) {
    for (const node of $$('.pending-state')) node.textContent = text;
  }

  function show(node, visible) {
    if (node) node.hidden = !visible;
  }

  function setText(selector, text) {
    const node = typeof selector === 'string' ? $(selector) : selector;
    if (node) node.textContent = text;
  }

  // ----------------------------------------------------------------- formatting

  const intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
  });
  const fullFormat = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit',
    hourCycle: 'h23', timeZoneName: 'short',
  });
  const hourMinuteFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  const clockFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
  const dayFormat = new Intl.DateTimeFormat(undefined, { weekday: 'short', day: 'numeric' });
  const dayTimeFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

  /** Parses the server's RFC 3339 timestamps (which carry microseconds) to epoch ms, or NaN. */
  function parseTime(text) {
    if (typeof text !== 'string') return NaN;
    return Date.parse(text.replace(/(\.\d{3})\d+/, '$1'));
  }

  function trimNumber(value, digits) {
    return String(Number(value.toFixed(digits)));
  }

  function fmtInt(value) {
    return isNum(value) ? intFormat.format(value) : '—';
  }

  function fmtNumber(value) {
    if (!isNum(value)) return '—';
    if (Number.isInteger(value)) return intFormat.format(value);
    const digits = Math.abs(value) >= 100 ? 1 : Math.abs(value) >= 1 ? 2 : 3;
    return trimNumber(value, digits);
  }

  function fmtPercent(ratio) {
    if (!isNum(ratio)) return '—';
    const pct = ratio * 100;
    if (pct === 0 || pct === 100) return `${pct}%`;
    return `${pct.toFixed(1)}%`;
  }

  function fmtPercentAxis(ratio) {
    const pct = ratio * 100;
    return `${trimNumber(pct, pct < 1 ? 2 : 1)}%`;
  }

  function fmtSeconds(seconds) {
    if (!isNum(seconds)) return '—';
    if (Number.isInteger(seconds)) return `${intFormat.format(seconds)} s`;
    if (seconds < 10) return `${seconds.toFixed(2)} s`;
    if (seconds < 100) return `${seconds.toFixed(1)} s`;
    return `${intFormat.format(Math.round(seconds))} s`;
  }

  function fmtMillis(ms) {
    if (!isNum(ms)) return '—';
    if (ms < 1000) return `${trimNumber(ms, ms < 10 ? 1 : 0)} ms`;
    return fmtSeconds(ms / 1000);
  }

  function fmtDateTime(ms) {
    return Number.isFinite(ms) ? dateTimeFormat.format(ms) : '—';
  }

  /** "45 s", "12 min", "2 h 5 min", "3 d 4 h". */
  function fmtDuration(seconds) {
    const s = Math.max(0, Math.round(seconds));
    if (s < 60) return `${s} s`;
    const m = Math.floor(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
    const d = Math.floor(h / 24);
    return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
  }

  function serverNow() {
    return Date.now() + state.clockSkewMs;
  }

  function fmtAgo(ms) {
    if (!Number.isFinite(ms)) return '—';
    const diff = (serverNow() - ms) / 1000;
    if (diff < -5) return `in ${fmtDuration(-diff)}`;
    if (diff < 5) return 'just now';
    return `${fmtDuration(diff)} ago`;
  }

  /** A <time> showing "12 min ago" that the 15-second ticker keeps current; the absolute time is its tooltip. */
  function timeAgo(iso) {
    const ms = parseTime(iso);
    if (!Number.isFinite(ms)) return el('span', { className: 'dash', text: '—' });
    return el('time', { datetime: iso, title: fullFormat.format(ms), dataset: { rel: 'ago' }, text: fmtAgo(ms) });
  }

  /** A <time> showing the absolute local time, with the relative time as its tooltip. */
  function timeAbs(iso) {
    const ms = parseTime(iso);
    if (!Number.isFinite(ms)) return el('span', { className: 'dash', text: '—' });
    return el('time', { datetime: iso, title: `${fullFormat.format(ms)} (${fmtAgo(ms)})`, text: fmtDateTime(ms) });
  }

  function refreshRelativeTimes() {
    for (const node of $$('time[data-rel="ago"]')) node.textContent = fmtAgo(parseTime(node.getAttribute('datetime')));
  }

  function dash() {
    return el('span', { className: 'dash', text: '—' });
  }

  function colorFor(platform) {
    if (!platform) return NO_PLATFORM_COLOR;
    if (PLATFORM_COLORS[platform]) return PLATFORM_COLORS[platform];
    if (!state.colorMap.has(platform)) {
      state.colorMap.set(platform, EXTRA_COLORS[state.colorMap.size % EXTRA_COLORS.length]);
    }
    return state.colorMap.get(platform);
  }

  function swatch(color, extraClass) {
    const node = el('span', { className: extraClass ? `swatch ${extraClass}` : 'swatch', 'aria-hidden': 'true' });
    if (color) node.style.background = color; // CSSOM: allowed under the CSP
    return node;
  }

  function platformChip(platform) {
    if (!platform) return dash();
    return el('span', { className: 'platform-chip' }, swatch(colorFor(platform)), platform);
  }

  function severityBadge(severity) {
    const known = Object.prototype.hasOwnProperty.call(SEVERITY_COLOR, severity);
    return el('span', { className: known ? `badge sev-${severity}` : 'badge', text: severity || 'unknown' });
  }

  function statusPill(status) {
    return el('span', { className: 'status', dataset: { status }, text: status || 'unknown' });
  }

  /** Only http(s) links from server data become hrefs. */
  function safeUrl(text) {
    if (typeof text !== 'string' || !text) return null;
    try {
      const url = new URL(text, location.origin);
      return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
    } catch (_) {
      return null;
    }
  }

  // ------------------------------------------------------------------------ API

  class ApiError extends Error {
    constructor(message, { status = 0, code = '', details = [], unreachable = false } = {}) {
      super(message);
      this.name = 'ApiError';
      this.status = status;
      this.code = code;
      this.details = details;
      // True for network errors, timeouts and 5xx: the API or its database is down.
      this.unreachable = unreachable;
    }

    /** One line for the banner and section messages. */
    describe() {
      const parts = [];
      if (this.status) parts.push(`HTTP ${this.status}`);
      if (this.code) parts.push(this.code);
      return parts.length ? `${parts.join(' ')}: ${this.message}` : this.message;
    }
  }

  function buildUrl(path, query) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query || {})) {
      if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
    }
    const qs = params.toString();
    return qs ? `${path}?${qs}` : path;
  }

  function errorFromBody(response, body, path) {
    const error = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : null;
    let message = error && typeof error.message === 'string' ? error.message : '';
    const details = error && Array.isArray(error.details) ? error.details : [];
    if (details.length) {
      const text = details
        .map((d) => (d && typeof d === 'object' ? [d.index !== undefined ? `#${d.index}` : '', d.field, d.reason].filter(Boolean).join(' ') : String(d)))
        .filter(Boolean)
        .join('; ');
      if (text) message = message ? `${message} (${text})` : text;
    }
    if (!message) message = `${response.statusText || 'request failed'} (${path})`;
    return new ApiError(message, {
      status: response.status,
      code: error && typeof error.code === 'string' ? error.code : '',
      details,
      unreachable: response.status >= 500,
    });
  }

  /**
   * The one place that talks to the server. Same-origin, cookie session,
   * X-CSRF-Token on every non-GET. Resolves to the parsed JSON body (or the
   * text for non-JSON answers); throws ApiError. A 401 sends the page back to
   * the login form unless `auth: false` (the session endpoints themselves).
   */
  async function request(method, path, { query, body, auth = true, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
    const headers = { Accept: 'application/json' };
    if (method !== 'GET' && state.session && state.session.csrf_token) headers['X-CSRF-Token'] = state.session.csrf_token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    let response;
    try {
      response = await fetch(buildUrl(path, query), {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'same-origin',
        cache: 'no-store',
        signal: controller.signal,
      });
    } catch (err) {
      const message = err && err.name === 'AbortError'
        ? `no answer from ${path} within ${timeoutMs / 1000} s`
        : `network error on ${path}: ${(err && err.message) || 'request failed'}`;
      throw new ApiError(message, { unreachable: true });
    } finally {
      clearTimeout(timer);
    }

    let data = null;
    const type = response.headers.get('Content-Type') || '';
    if (response.status !== 204) {
      try {
        data = type.includes('json') ? await response.json() : await response.text();
      } catch (_) {
        if (response.ok) throw new ApiError(`unreadable answer from ${path}`, { status: response.status, unreachable: true });
      }
    }
    if (response.ok) {
      // A proxy's HTML error page with a 200 is not Tocsin answering.
      if (type && !type.includes('json') && response.status !== 204) {
        throw new ApiError(`unexpected ${type.split(';')[0]} answer from ${path}`, { status: response.status, unreachable: true });
      }
      return data;
    }
    const error = errorFromBody(response, data, path);
    if (response.status === 401 && auth) onUnauthorized(error.message);
    throw error;
  }

  const api = {
    get: (path, query, options) => request('GET', path, { ...options, query }),
    post: (path, body, options) => request('POST', path, { ...options, body }),
  };

  /**
   * Guards against out-of-order answers: `const current = begin('events')`,
   * then after the await `if (!current()) return;` drops an answer that a
   * newer request for the same section (or a sign-out) has superseded.
   */
  function begin(key) {
    const n = (state.seq[key] || 0) + 1;
    state.seq[key] = n;
    const gen = state.sessionGen;
    return () => state.seq[key] === n && state.sessionGen === gen && state.session !== null;
  }

  // ---------------------------------------------- loading, errors and retrying

  function setSectionError(section, message) {
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
        console.error(`Tocsin dashboard: ${section}`, err); // a bug in this file: keep the rest of the page working
        setSectionError(section, `This section failed to render: ${err && err.message}`);
        return;
      }
      if (err.status === 401) return; // the login form is already shown
      if (err.unreachable) throw err;
      setSectionError(section, err.describe());
    }
  }

  /** Runs loaders concurrently; returns true when the API answered all of them. */
  async function runLoads(loads, { full = false } = {}) {
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

  function fullLoads() {
    return [
      ['rules', loadRules],
      ['summary', loadSummary],
      ['chart-upload', () => loadSeries('upload')],
      ['chart-webhook', () => loadSeries('webhook')],
      ['events', loadEvents],
      ['alerts', loadActiveAlerts],
      ['workers', loadWorkers],
      ['dead-letters', loadDeadLetters],
      ['history', loadHistory],
    ];
  }

  async function refreshAll() {
    if (!state.session) return;
    clearTimeout(state.refreshTimer);
    state.refreshTimer = null;
    const ok = await runLoads(fullLoads(), { full: true });
    if (!state.session) return;
    if (ok) {
      state.lastUpdated = Date.now();
      renderLastUpdated();
    }
    updateEmptyState();
    document.body.dataset.ready = 'true';
    scheduleNext();
  }

  /** Reloads what the platform / window / type filters affect. */
  async function refreshView({ events = true, metrics = true } = {}) {
    const loads = [];
    if (metrics) {
      loads.push(['summary', loadSummary], ['chart-upload', () => loadSeries('upload')], ['chart-webhook', () => loadSeries('webhook')]);
    }
    if (events) loads.push(['events', loadEvents]);
    await runLoads(loads);
    updateEmptyState();
  }

  function markUnreachable(err) {
    state.backoffMs = state.failing ? Math.min(state.backoffMs * 2, MAX_BACKOFF_MS) : FIRST_BACKOFF_MS;
    state.failing = err;
    const at = clockFormat.format(Date.now());
    setText('#error-banner-detail', `Last error (${at}): ${err.describe()}`);
    setPendingText('No data yet: waiting for the API.');
    show($('#error-banner'), true);
    scheduleNext();
  }

  function markReachable(full) {
    if (!state.failing) return;
    state.failing = null;
    state.backoffMs = 0;
    show($('#error-banner'), false);
    clearInterval(state.bannerTimer);
    state.bannerTimer = null;
    // A partial load got through after an outage: bring every section up to date.
    if (!full) refreshAll();
  }

  /**
   * One timer drives all polling:
   *  - API unreachable → retry everything with backoff (2 s … 30 s), whatever the toggle says;
   *  - auto-refresh on → everything every 30 s;
   *  - auto-refresh paused but the live stream is down → active alerts every 30 s;
   *  - paused and live → nothing (the stream pushes alert changes).
   */
  function scheduleNext() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = null;
    if (!state.session) return;
    let delay;
    let action;
    if (state.failing) {
      delay = state.backoffMs;
      action = refreshAll;
    } else if (state.autoRefresh) {
      delay = REFRESH_MS;
      action = refreshAll;
    } else if (state.streamState !== 'live') {
      delay = REFRESH_MS;
      action = pollActiveAlerts;
    } else {
      return;
    }
    state.nextRefreshAt = Date.now() + delay;
    state.refreshTimer = setTimeout(action, delay);
    if (state.failing) startBannerCountdown();
  }

  async function pollActiveAlerts() {
    await runLoads([['alerts', loadActiveAlerts]]);
    scheduleNext();
  }

  function startBannerCountdown() {
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((state.nextRefreshAt - Date.now()) / 1000));
      setText('#error-banner-next', state.loading ? 'Retrying…' : `Next attempt in ${seconds} s`);
    };
    tick();
    if (!state.bannerTimer) state.bannerTimer = setInterval(tick, 1000);
  }

  function renderLastUpdated() {
    const node = $('#last-updated');
    if (!node || !state.lastUpdated) return;
    node.textContent = `Updated ${clockFormat.format(state.lastUpdated)}`
      + (state.autoRefresh ? ' · refreshing every 30 s' : ' · auto-refresh paused');
  }

  // -------------------------------------------------------------------- loaders

  async function loadRules() {
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

  async function loadSummary() {
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

  async function loadSeries(which) {
    const chart = CHARTS[which];
    const current = begin(`series-${which}`);
    const { window, platform } = state.filters;
    const bucket = BUCKET_FOR_WINDOW[window];
    const data = await api.get('/api/monitoring/metrics/series', {
      ...chart.query, bucket, window, platform: platform === 'all' ? null : platform,
    });
    if (!current()) return;
    state.series[which] = { ...data, bucket: data.bucket || bucket };
    notePlatforms((data.series || []).map((s) => s && s.platform));
    renderChart(which);
  }

  async function loadEvents() {
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

  async function loadActiveAlerts() {
    const current = begin('alerts');
    const data = await api.get('/api/monitoring/alerts', { status: 'pending,firing,acknowledged', limit: 200 });
    if (!current()) return;
    state.activeAlerts = new Map();
    for (const alert of data.alerts || []) {
      if (alert && isNum(alert.id) && alert.status !== 'resolved') state.activeAlerts.set(alert.id, alert);
    }
    notePlatforms([...state.activeAlerts.values()].map((a) => a.platform));
    renderActiveAlerts();
  }

  async function loadWorkers() {
    const current = begin('workers');
    const data = await api.get('/api/workers/alert-checker');
    if (!current()) return;
    renderWorkers(data || {});
  }

  async function loadDeadLetters() {
    if (!state.deadLettersSupported) return;
    const current = begin('dead-letters');
    let data;
    try {
      data = await api.get('/api/notifications', { status: 'dead', limit: 100 });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        // This server has no notifications endpoint: hide the section for good.
        state.deadLettersSupported = false;
        show($('#dead-letters'), false);
        return;
      }
      throw err;
    }
    if (!current()) return;
    renderDeadLetters(Array.isArray(data.notifications) ? data.notifications : []);
  }

  function historyFilters() {
    return {
      status: $('#history-status').value,
      severity: $('#history-severity').value,
      rule: $('#history-rule').value.trim(),
      platform: $('#history-platform').value,
      window: $('#history-window').value,
    };
  }

  async function loadHistory() {
    const current = begin('history');
    const data = await api.get('/api/monitoring/alerts', {
      ...historyFilters(), limit: HISTORY_PAGE_SIZE, cursor: state.history.cursor,
    });
    if (!current()) return;
    state.history.rows = Array.isArray(data.alerts) ? data.alerts : [];
    state.history.next = data.next_cursor || null;
    notePlatforms(state.history.rows.map((a) => a.platform));
    renderHistory();
  }

  /** After an alert changes, refresh the history a little later (several changes often come together). */
  function scheduleHistoryRefresh() {
    clearTimeout(state.historyTimer);
    state.historyTimer = setTimeout(() => runLoads([['history', loadHistory]]), 3000);
  }

  // ---------------------------------------------------------- platforms / rules

  /** Remembers platforms seen in any answer; the platform selects list them. */
  function notePlatforms(list) {
    let added = false;
    for (const p of list) {
      if (typeof p === 'string' && PLATFORM_RE.test(p) && !state.platforms.has(p)) {
        state.platforms.add(p);
        added = true;
      }
    }
    if (added) renderPlatformOptions();
  }

  function renderPlatformOptions() {
    const names = [...state.platforms].sort();
    const fillSelect = (select, allValue, allLabel) => {
      const selected = select.value;
      select.replaceChildren(
        el('option', { value: allValue, text: allLabel }),
        ...names.map((p) => el('option', { value: p, text: p })),
      );
      select.value = names.includes(selected) ? selected : allValue;
    };
    fillSelect($('#filter-platform'), 'all', 'All platforms');
    fillSelect($('#history-platform'), '', 'Any');
    $('#filter-platform').value = state.filters.platform;
  }

  function renderRuleOptions() {
    const list = $('#rule-names');
    list.replaceChildren(...(state.rules || []).map((r) => el('option', { value: r.name })));
  }

  function ruleByName(name) {
    return (state.rules || []).find((r) => r.name === name) || null;
  }

  /** How a rule's value reads: a ratio (→ %), seconds, or a plain number. */
  function valueKind(ruleName) {
    const rule = ruleByName(ruleName);
    const text = `${ruleName || ''} ${(rule && rule.description) || ''}`.toLowerCase();
    if ((rule && rule.kind === 'ratio') || /error_rate|ratio|success_rate/.test(ruleName || '')) return 'ratio';
    if (/latency|duration/.test(text)) return 'seconds';
    return 'number';
  }

  function fmtRuleValue(ruleName, value) {
    switch (valueKind(ruleName)) {
      case 'ratio': return fmtPercent(value);
      case 'seconds': return fmtSeconds(value);
      default: return fmtNumber(value);
    }
  }

  /**
   * The rule whose threshold a chart draws. GET /api/rules does not say which
   * metric a rule reads, so this matches on the name and description (and on
   * metric fields, should the server add them).
   */
  function chartRule(which) {
    const rules = (state.rules || []).filter((r) => r.enabled !== false && isNum(r.threshold));
    const text = (r) => [r.name, r.description, r.metric, r.name_filter, r.numerator]
      .filter((x) => typeof x === 'string').join(' ').toLowerCase();
    if (which === 'upload') {
      return rules.find((r) => r.kind === 'ratio' && text(r).includes('upload'))
        || rules.find((r) => r.kind === 'ratio' && /error_rate/.test(r.name)) || null;
    }
    return rules.find((r) => text(r).includes('webhook') && text(r).includes('latency')) || null;
  }

  function threshold(which) {
    const rule = chartRule(which);
    const chart = CHARTS[which];
    return {
      value: rule ? rule.threshold : chart.fallbackThreshold,
      severity: rule && SEVERITY_COLOR[rule.severity] ? rule.severity : chart.fallbackSeverity,
      rule,
    };
  }

  // ------------------------------------------------------------- active alerts

  function compareAlerts(a, b) {
    return (STATUS_RANK[a.status] ?? 9) - (STATUS_RANK[b.status] ?? 9)
      || (SEVERITY_RANK[a.severity] ?? 9) - (SEVERITY_RANK[b.severity] ?? 9)
      || (parseTime(b.started_at) || 0) - (parseTime(a.started_at) || 0)
      || b.id - a.id;
  }

  /**
   * Keyed update of #active-alerts: existing items are updated in place so an
   * open note form (and what is typed in it) survives live updates.
   */
  function renderActiveAlerts() {
    const list = $('#active-alerts');
    const alerts = [...state.activeAlerts.values()].sort(compareAlerts);
    const existing = new Map(Array.from(list.children, (li) => [li.dataset.alertId, li]));
    alerts.forEach((alert, index) => {
      const key = String(alert.id);
      let item = existing.get(key);
      if (item) existing.delete(key);
      else item = el('li', { className: 'alert' }, el('div', { className: 'alert-main' }), el('div', { className: 'alert-actions' }), el('div', { className: 'alert-form-slot' }));
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

  function updateAlertItem(item, alert) {
    setProps(item, {
      dataset: {
        alertId: alert.id, rule: alert.rule || '', severity: alert.severity || '',
        status: alert.status || '', platform: alert.platform || '',
      },
    });
    const [main, actions, formSlot] = item.children;
    // The note form stays only while it is the open one and its action still applies: it goes
    // once submitted, or when the alert got acknowledged (e.g. by someone else) under an open
    // acknowledge form.
    const open = state.noteForm && state.noteForm.alertId === alert.id ? state.noteForm : null;
    if (open && open.action === 'acknowledge' && alert.status === 'acknowledged') state.noteForm = null;
    if (formSlot.firstChild && !(open && state.noteForm === open)) formSlot.replaceChildren();

    const value = el('span', { className: 'alert-value' },
      el('span', { className: 'over', text: fmtRuleValue(alert.rule, alert.value) }),
      ` ${alert.comparison || '>'} ${fmtRuleValue(alert.rule, alert.threshold)}`,
      isNum(alert.samples) ? ` · ${fmtInt(alert.samples)} samples` : '');
    const runbook = safeUrl(alert.runbook_url);
    fill(main,
      el('div', { className: 'alert-title' },
        severityBadge(alert.severity),
        el('span', { className: 'alert-rule', text: alert.rule || 'unnamed rule' }),
        alert.platform ? platformChip(alert.platform) : (alert.group_key && alert.group_key !== 'all' ? el('span', { className: 'muted', text: alert.group_key }) : null),
        statusPill(alert.status)),
      alert.description ? el('div', { className: 'alert-desc', text: alert.description }) : null,
      el('div', { className: 'alert-meta' },
        el('span', null, 'Value ', value),
        el('span', null, 'Since ', timeAgo(alert.fired_at || alert.started_at)),
        alert.status === 'acknowledged'
          ? el('span', null, 'Acknowledged by ', el('strong', { text: alert.acknowledged_by || 'unknown' }), ' ', timeAgo(alert.acknowledged_at))
          : null,
        runbook ? el('a', { href: runbook, target: '_blank', rel: 'noopener noreferrer', text: 'Runbook' }) : null),
      alertNote(alert) ? el('div', { className: 'alert-note', text: `Note: ${alertNote(alert)}` }) : null,
    );

    actions.replaceChildren();
    if (isAdmin()) {
      if (alert.status !== 'acknowledged') {
        actions.append(el('button', {
          type: 'button', className: 'btn btn-small', dataset: { action: 'acknowledge' }, text: 'Acknowledge',
          on: { click: () => openNoteForm(alert.id, 'acknowledge') },
        }));
      }
      actions.append(el('button', {
        type: 'button', className: 'btn btn-small', dataset: { action: 'resolve' }, text: 'Resolve',
        on: { click: () => openNoteForm(alert.id, 'resolve') },
      }));
    }

    if (state.flash.has(alert.id)) {
      state.flash.delete(alert.id);
      item.classList.remove('flash');
      void item.offsetWidth; // restart the animation
      item.classList.add('flash');
    }
  }

  /** A non-empty note, or null. The API sends `acknowledge_note` and `resolve_note`. */
  function noteText(value) {
    return typeof value === 'string' && value.trim() ? value.trim() : null;
  }

  /** The note an open alert shows: the one given when it was acknowledged. */
  function alertNote(alert) {
    return noteText(alert.acknowledge_note) || noteText(alert.note);
  }

  /** Both notes of a history row, labelled when there are two. */
  function historyNote(alert) {
    const ack = noteText(alert.acknowledge_note);
    const resolve = noteText(alert.resolve_note);
    if (ack && resolve) return `Acknowledged: ${ack} · Resolved: ${resolve}`;
    return ack || resolve || noteText(alert.note);
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
    const input = el('input', { id: inputId, name: 'note', type: 'text', maxlength: '1000', autocomplete: 'off', placeholder: action === 'resolve' ? 'e.g. fixed by rolling back' : 'e.g. looking into it' });
    const error = el('p', { className: 'form-error', role: 'alert', hidden: true });
    const submit = el('button', { type: 'submit', className: 'btn btn-small btn-primary', text: label });
    const cancel = el('button', { type: 'button', className: 'btn btn-small', dataset: { action: 'cancel' }, text: 'Cancel', on: { click: closeNoteForm } });
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
      else runLoads([['alerts', loadActiveAlerts]]); // no alert in the answer: read the list again
      form.remove(); // whatever the answer held, the submitted form is done
      const item = alertItem(alertId);
      const next = item && item.querySelector('.alert-actions button');
      if (hadFocus && next) next.focus();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      const message = !(err instanceof ApiError) ? String(err)
        : err.status === 409 ? 'This alert was already resolved (or acknowledged) by someone else. Refreshing…'
          : err.status === 403 ? `Not allowed: ${err.message}`
            : err.describe();
      error.textContent = message;
      error.hidden = false;
      submit.disabled = false;
      cancel.disabled = false;
      if (err instanceof ApiError && err.status === 409) {
        setTimeout(() => runLoads([['alerts', loadActiveAlerts]]), 1500);
      }
    }
  }

  /** Inserts, updates or removes one alert in the active list (from the stream or an action's answer). */
  function applyAlert(alert, type) {
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

  function isAdmin() {
    return Boolean(state.session && Array.isArray(state.session.scopes) && state.session.scopes.includes('admin'));
  }

  // ------------------------------------------------------------------ stat cards

  function setStat(id, text, raw, detail, bad) {
    const node = $(`#${id}`);
    node.textContent = text;
    node.dataset.value = isNum(raw) ? String(raw) : '';
    if (bad) node.dataset.state = 'bad';
    else delete node.dataset.state;
    setText(`#${id}-detail`, detail);
  }

  function renderStats() {
    const totals = (state.summary && state.summary.totals) || {};
    const upload = totals.upload || {};
    const oauth = totals.oauth || {};
    const webhook = totals.webhook || {};
    const token = totals.token_refresh || {};
    const uploadLimit = threshold('upload').value;
    const latencyLimit = threshold('webhook').value;

    const uploads = (upload.success || 0) + (upload.failure || 0);
    const uploadBad = isNum(upload.success_rate) && 1 - upload.success_rate > uploadLimit;
    setStat('stat-upload-success-rate', fmtPercent(upload.success_rate), upload.success_rate,
      uploads ? `${fmtInt(upload.success)} of ${fmtInt(uploads)} uploads${uploadBad ? ` · error rate over ${fmtPercent(uploadLimit)}` : ''}` : 'No uploads in the window',
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

  // -------------------------------------------------------- metrics by platform

  const int = (v) => fmtInt(v);
  const GROUPS = [
    ['oauth', 'OAuth', [['success', 'Success', int], ['failure', 'Failure', int], ['success_rate', 'Success rate', fmtPercent]]],
    ['upload', 'Upload', [['success', 'Success', int], ['failure', 'Failure', int], ['success_rate', 'Success rate', fmtPercent]]],
    ['webhook', 'Webhook', [['received', 'Received', int], ['processed', 'Processed', int], ['avg_latency_s', 'Avg latency', fmtSeconds], ['p95_latency_s', 'p95 latency', fmtSeconds]]],
    ['token_refresh', 'Token refresh', [['success', 'Success', int], ['failure', 'Failure', int]]],
    ['api', 'API', [['calls', 'Calls', int], ['avg_latency_s', 'Avg latency', fmtSeconds], ['p95_latency_s', 'p95 latency', fmtSeconds]]],
    ['worker', 'Worker', [['runs', 'Runs', int], ['avg_duration_s', 'Avg duration', fmtSeconds]]],
  ];

  function isBadMetric(group, field, value) {
    if (!isNum(value)) return false;
    if (group === 'upload' && field === 'success_rate') return 1 - value > threshold('upload').value;
    if (group === 'webhook' && field === 'avg_latency_s') return value > threshold('webhook').value;
    return false;
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
          el('dd', { dataset: { field, state: isBadMetric(key, field, group[field]) ? 'bad' : null }, text: format(group[field]) }),
        ])));
    })));
  }

  function renderPlatformMetrics() {
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

  // --------------------------------------------------------------------- charts

  /** A "nice" step (1, 2, 2.5, 5 × 10^n) so that about `count` steps cover `span`. */
  function niceStep(span, count) {
    const raw = span / Math.max(1, count);
    const power = 10 ** Math.floor(Math.log10(raw));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= raw) return m * power;
    return 10 * power;
  }

  const TIME_STEPS = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800];

  /** Tick times (ms) aligned to local clock boundaries. */
  function timeTicks(t0, t1, maxTicks) {
    const spanS = (t1 - t0) / 1000;
    const step = (TIME_STEPS.find((s) => spanS / s <= maxTicks) || 172800) * 1000;
    const offset = new Date(t0).getTimezoneOffset() * 60000;
    const ticks = [];
    for (let t = Math.ceil((t0 - offset) / step) * step + offset; t <= t1; t += step) ticks.push(t);
    return { ticks, step };
  }

  function timeLabel(t, stepMs) {
    const d = new Date(t);
    const midnight = d.getHours() === 0 && d.getMinutes() === 0;
    if (stepMs >= 86400000 || (midnight && stepMs >= 3600000)) return dayFormat.format(t);
    return hourMinuteFormat.format(t);
  }

  function renderChart(which) {
    const chart = CHARTS[which];
    const figure = document.getElementById(chart.id);
    const data = state.series[which];
    if (!figure || !data) return;
    figure.dataset.loaded = 'true'; // first, so the body has its real width when the chart is drawn
    const body = $('.chart-body', figure);
    const limit = threshold(which);
    const bucket = data.bucket;
    const bucketLabel = BUCKET_LABEL[bucket] || bucket;
    setText($('.chart-note', figure),
      `Threshold ${chart.axis(limit.value)}${limit.rule ? ` · rule ${limit.rule.name}` : ' · default'} · ${bucketLabel} buckets`);

    const series = (data.series || []).filter((s) => s && Array.isArray(s.points));
    body.replaceChildren(drawLineChart(body, {
      chart, series, limit, bucketMs: (BUCKET_SECONDS[bucket] || 300) * 1000,
      since: parseTime(data.since), until: parseTime(data.until),
    }));
    renderLegend(figure, series, limit, chart);
  }

  function renderLegend(figure, series, limit, chart) {
    const items = series.map((s) => {
      const values = s.points.map((p) => p.value).filter(isNum);
      const peak = values.length ? Math.max(...values) : null;
      return el('li', { dataset: { platform: s.platform || '' } },
        swatch(colorFor(s.platform)),
        `${s.platform || 'no platform'}${peak !== null ? ` · peak ${chart.value(peak)}` : ' · no data'}`);
    });
    const dashed = swatch(null, 'dashed');
    dashed.style.borderTopColor = SEVERITY_COLOR[limit.severity];
    items.push(el('li', { dataset: { threshold: String(limit.value) } }, dashed, `threshold ${chart.axis(limit.value)} (${limit.severity})`));
    $('.legend', figure).replaceChildren(...items);
  }

  /**
   * An SVG line chart sized to its container: one line per platform (gaps
   * where a bucket has no value), the threshold as a dashed line, a few axis
   * labels, and one hover band per bucket whose <title> is the tooltip.
   */
  function drawLineChart(container, { chart, series, limit, bucketMs, since, until }) {
    const width = Math.max(280, Math.round(container.clientWidth || 600));
    const height = width < 520 ? 200 : 230;
    const m = { top: 12, right: 14, bottom: 26, left: 50 };
    const plotW = width - m.left - m.right;
    const plotH = height - m.top - m.bottom;
    const t0 = Number.isFinite(since) ? since : Date.now() - 86400000;
    const t1 = Number.isFinite(until) && until > t0 ? until : t0 + 86400000;

    const values = series.flatMap((s) => s.points.map((p) => p.value)).filter(isNum);
    const top = Math.max(limit.value * 1.25, ...values, 0) || 1;
    const step = niceStep(top, 4);
    const yMax = Math.ceil(top / step - 1e-9) * step;
    const x = (t) => m.left + Math.min(1, Math.max(0, (t - t0) / (t1 - t0))) * plotW;
    const y = (v) => m.top + plotH - (v / yMax) * plotH;
    const r = (n) => Math.round(n * 10) / 10;

    const svg = svgEl('svg', {
      viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', dataset: { chart: chart.id },
      'aria-label': `${chart.what} per platform, threshold ${chart.axis(limit.value)}`,
    });

    // Horizontal grid and y labels.
    for (let v = 0; v <= yMax + step / 2; v += step) {
      svg.append(
        svgEl('line', { className: 'grid-line', x1: m.left, x2: width - m.right, y1: r(y(v)), y2: r(y(v)) }),
        svgEl('text', { x: m.left - 6, y: r(y(v)) + 4, 'text-anchor': 'end', text: chart.axis(v) }),
      );
    }
    // Time axis.
    const { ticks, step: tickStep } = timeTicks(t0, t1, Math.max(3, Math.floor(plotW / 70)));
    svg.append(svgEl('line', { className: 'axis-line', x1: m.left, x2: width - m.right, y1: m.top + plotH, y2: m.top + plotH }));
    for (const t of ticks) {
      svg.append(
        svgEl('line', { className: 'axis-line', x1: r(x(t)), x2: r(x(t)), y1: m.top + plotH, y2: m.top + plotH + 4 }),
        svgEl('text', { x: r(x(t)), y: height - 6, 'text-anchor': 'middle', text: timeLabel(t, tickStep) }),
      );
    }

    // Threshold: the line under the data, its label above it.
    const color = SEVERITY_COLOR[limit.severity];
    const thresholdY = r(y(limit.value));
    svg.append(svgEl('line', {
      className: 'threshold', x1: m.left, x2: width - m.right, y1: thresholdY, y2: thresholdY,
      stroke: color, 'stroke-width': 1.5, 'stroke-dasharray': '6 4', dataset: { threshold: limit.value },
    }, svgEl('title', { text: `Threshold ${chart.axis(limit.value)}` })));

    // Lines: one path per platform, split where a bucket has no value; lone points get a dot.
    const center = (p) => parseTime(p.t) + bucketMs / 2;
    for (const s of series) {
      const colour = colorFor(s.platform);
      let d = '';
      let run = [];
      const flush = () => {
        if (run.length === 1) {
          svg.append(svgEl('circle', { cx: r(x(run[0][0])), cy: r(y(run[0][1])), r: 2.5, fill: colour, dataset: { platform: s.platform || '' } }));
        }
        run.forEach(([t, v], i) => { d += `${i ? 'L' : 'M'}${r(x(t))},${r(y(v))}`; });
        run = [];
      };
      for (const p of s.points) {
        if (isNum(p.value)) run.push([center(p), p.value]);
        else flush();
      }
      flush();
      if (d) svg.append(svgEl('path', { className: 'series-line', d, stroke: colour, dataset: { platform: s.platform || '' } }));
    }

    svg.append(svgEl('text', {
      className: 'threshold-label', x: m.left + 6, y: thresholdY - 5, fill: color,
      text: `threshold ${chart.axis(limit.value)}`,
    }));

    // Tooltips: one transparent band per bucket, listing every platform.
    const byTime = new Map();
    for (const s of series) {
      for (const p of s.points) {
        const t = parseTime(p.t);
        if (!Number.isFinite(t)) continue;
        if (!byTime.has(t)) byTime.set(t, []);
        byTime.get(t).push([s.platform, p]);
      }
    }
    for (const [t, entries] of [...byTime.entries()].sort((a, b) => a[0] - b[0])) {
      const lines = entries.map(([platform, p]) => `${platform || 'no platform'}: ${isNum(p.value) ? chart.value(p.value) : 'no data'}${isNum(p.samples) ? ` (${fmtInt(p.samples)} ${chart.samplesNoun})` : ''}`);
      const left = x(t);
      const right = x(t + bucketMs);
      if (right <= m.left || left >= width - m.right) continue;
      svg.append(svgEl('rect', {
        className: 'hover-band', x: r(left), y: m.top, width: r(Math.max(1, right - left)), height: plotH,
      }, svgEl('title', { text: `${fmtDateTime(t)} – ${hourMinuteFormat.format(t + bucketMs)}\n${lines.join('\n')}` })));
    }

    if (!values.length) {
      svg.append(svgEl('text', { className: 'no-data', x: m.left + plotW / 2, y: m.top + plotH / 2, 'text-anchor': 'middle', text: 'No data in this window' }));
    }
    return svg;
  }

  /** Redraws charts when their width changes (the SVG is drawn at the real pixel size for crisp text). */
  function watchChartSizes() {
    if (typeof ResizeObserver === 'undefined') return;
    const widths = new Map();
    let frame = 0;
    const observer = new ResizeObserver((entries) => {
      let changed = false;
      for (const entry of entries) {
        const w = Math.round(entry.contentRect.width);
        if (widths.get(entry.target) !== w) {
          widths.set(entry.target, w);
          changed = true;
        }
      }
      if (!changed) return;
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        renderChart('upload');
        renderChart('webhook');
      });
    });
    for (const body of $$('.chart-body')) observer.observe(body);
  }

  // --------------------------------------------------------------------- events

  function fmtEventValue(name, value) {
    if (/\.(latency|duration)$/.test(name || '')) return fmtSeconds(value);
    return fmtNumber(value);
  }

  function labelChips(labels) {
    const entries = labels && typeof labels === 'object' ? Object.entries(labels) : [];
    if (!entries.length) return dash();
    return el('span', { className: 'chips' }, entries.sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => el('span', { className: 'chip', text: `${k}=${v}` })));
  }

  function renderEvents() {
    const rows = state.events.rows || [];
    $('#events-table tbody').replaceChildren(...rows.map((e) => el('tr', {
      dataset: { eventId: e.id, name: e.name, platform: e.platform || '' },
    },
    el('td', null, timeAbs(e.occurred_at)),
    el('td', null, el('span', { className: /\.failure$/.test(e.name || '') ? 'event-name mono is-failure' : 'event-name mono', text: e.name })),
    el('td', null, platformChip(e.platform)),
    el('td', { className: 'num', text: fmtEventValue(e.name, e.value) }),
    el('td', null, labelChips(e.labels)))));

    const page = state.events.stack.length + 1;
    show($('#events-none'), rows.length === 0);
    show($('#events-table').closest('.table-wrap'), rows.length > 0);
    markLoaded('#events-section');
    $('#events-prev').disabled = state.events.stack.length === 0;
    $('#events-next').disabled = !state.events.next;
    setText('#events-page', `Page ${page}${rows.length ? ` · ${rows.length} events` : ''}`);
    const { type, platform, window } = state.filters;
    setText('#events-scope', `${type === 'all' ? 'All types' : type} · ${platform === 'all' ? 'all platforms' : platform} · ${WINDOW_LABEL[window]} · newest first`);
  }

  function resetEventPaging() {
    state.events.cursor = null;
    state.events.stack = [];
  }

  async function pageEvents(direction) {
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

  // ---------------------------------------------------------------- empty state

  function totalsAreZero(totals) {
    if (!totals) return false;
    for (const [key, group] of Object.entries(totals)) {
      if (key === 'platform' || !group || typeof group !== 'object') continue;
      for (const [field, value] of Object.entries(group)) {
        if (isNum(value) && value !== 0 && !/rate|latency|duration/.test(field)) return false;
      }
    }
    return true;
  }

  function updateEmptyState() {
    const empty = Boolean(state.summary && totalsAreZero(state.summary.totals)
      && state.events.rows && state.events.rows.length === 0 && state.events.stack.length === 0);
    const { platform, window } = state.filters;
    setText('#empty-state-scope', `in ${WINDOW_LABEL[window]}${platform === 'all' ? '' : ` for ${platform}`}`);
    setText('#empty-state-curl', `curl -X POST "${location.origin}/api/metrics" -H "Authorization: Bearer $TOCSIN_KEY" -H "Content-Type: application/json" -d '{"name":"upload.success","platform":"tiktok"}'`);
    show($('#empty-state'), empty);
    for (const id of ['platforms-section', 'charts-section', 'events-section']) show(document.getElementById(id), !empty);
  }

  async function copyCurl() {
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

  // -------------------------------------------------------------------- workers

  function renderWorkers(data) {
    const workers = Array.isArray(data.workers) ? [...data.workers] : [];
    workers.sort((a, b) => Number(Boolean(a.stale)) - Number(Boolean(b.stale)) || String(a.id).localeCompare(String(b.id)));
    setText('#workers-interval', isNum(data.interval_s) ? `Rules are checked every ${fmtDuration(data.interval_s)}` : '');
    $('#worker-status tbody').replaceChildren(...workers.map((w) => el('tr', {
      dataset: { workerId: w.id, stale: w.stale ? 'true' : 'false' },
    },
    el('td', { className: 'mono', text: w.id }),
    el('td', { text: w.host || '—' }),
    el('td', { className: 'num', text: isNum(w.pid) ? String(w.pid) : '—' }),
    el('td', null, timeAgo(w.last_heartbeat)),
    el('td', null, w.last_check_at ? timeAgo(w.last_check_at) : el('span', { className: 'dash', text: 'never' })),
    el('td', { className: 'num', text: fmtMillis(w.last_check_duration_ms) }),
    el('td', { className: 'num', text: fmtInt(w.evaluations) }),
    el('td', { className: 'num', text: fmtInt(w.alerts_fired) }),
    el('td', null, el('span', { className: 'state-badge', dataset: { state: w.stale ? 'stale' : 'ok' }, text: w.stale ? 'stale' : 'healthy' })))));
    show($('#workers-none'), workers.length === 0);
    show($('#workers-table').closest('.table-wrap'), workers.length > 0);
    markLoaded('#worker-status');
  }

  async function runChecks() {
    const button = $('#run-checks');
    const out = $('#run-checks-result');
    button.disabled = true;
    button.textContent = 'Running checks…';
    const started = performance.now();
    try {
      const data = await request('POST', '/api/workers/alert-checker', { query: { wait: 'true' }, timeoutMs: 60000 });
      const results = Array.isArray(data && data.results) ? data.results : [];
      const seconds = (performance.now() - started) / 1000;
      fill(out,
        el('p', { className: 'small' }, el('strong', { text: `Evaluated ${fmtInt(data && isNum(data.evaluated) ? data.evaluated : results.length)}` }),
          ` rule group${results.length === 1 ? '' : 's'} in ${seconds.toFixed(1)} s.`),
        results.length ? el('div', { className: 'table-wrap' }, el('table', { className: 'data-table' },
          el('thead', null, el('tr', null, ['Rule', 'Group', 'Value', 'Samples', 'Outcome'].map((h, i) => el('th', { scope: 'col', className: i === 2 || i === 3 ? 'num' : null, text: h })))),
          el('tbody', null, results.map((res) => el('tr', { dataset: { outcome: res.outcome || '' } },
            el('td', { text: res.rule || '—' }),
            el('td', { text: res.group_key || '—' }),
            el('td', { className: 'num', text: fmtRuleValue(res.rule, res.value) }),
            el('td', { className: 'num', text: fmtInt(res.samples) }),
            el('td', null, el('span', { className: 'outcome', dataset: { outcome: res.outcome || '' }, text: (res.outcome || '—').replace('_', ' ') }))))))) : null,
      );
      out.hidden = false;
      runLoads([['alerts', loadActiveAlerts], ['workers', loadWorkers]]);
      scheduleHistoryRefresh();
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      out.replaceChildren(el('p', { className: 'form-error', text: `Run failed: ${err instanceof ApiError ? err.describe() : err}` }));
      out.hidden = false;
    } finally {
      button.disabled = false;
      button.textContent = 'Run checks now';
    }
  }

  // --------------------------------------------------------------- dead letters

  function renderDeadLetters(items) {
    show($('#dead-letters'), true);
    setText('#dead-letters-count', String(items.length));
    $('#dead-letters tbody').replaceChildren(...items.map((n) => {
      const action = isAdmin()
        ? el('button', { type: 'button', className: 'btn btn-small', dataset: { action: 'retry' }, text: 'Retry' })
        : null;
      const row = el('tr', { dataset: { notificationId: n.id } },
        el('td', null, timeAbs(n.created_at)),
        el('td', { text: n.channel || '—' }),
        el('td', null, `#${n.alert_id ?? '?'} `, el('span', { className: 'muted', text: n.rule || '' })),
        el('td', { text: n.transition || '—' }),
        el('td', { className: 'num', text: fmtInt(n.attempts) }),
        el('td', { className: 'wrap', text: n.last_error || '—' }),
        el('td', null, action));
      if (action) action.addEventListener('click', () => retryNotification(n.id, row, action));
      return row;
    }));
    show($('#dead-letters-none'), items.length === 0);
    show($('#dead-letters-table').closest('.table-wrap'), items.length > 0);
    markLoaded('#dead-letters');
  }

  async function retryNotification(id, row, button) {
    button.disabled = true;
    button.textContent = 'Retrying…';
    try {
      await api.post(`/api/notifications/${encodeURIComponent(id)}/retry`);
      row.dataset.retried = 'true';
      button.replaceWith(el('span', { className: 'muted small', text: 'Queued for retry' }));
      setTimeout(() => runLoads([['dead-letters', loadDeadLetters]]), 2500);
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return;
      button.disabled = false;
      button.textContent = 'Retry';
      setSectionError('dead-letters', `Retry of notification ${id} failed: ${err instanceof ApiError ? err.describe() : err}`);
    }
  }

  // -------------------------------------------------------------- alert history

  function fmtEnded(alert) {
    if (alert.status !== 'resolved') return dash();
    const how = alert.resolution === 'manual' ? `manually${alert.resolved_by ? ` by ${alert.resolved_by}` : ''}`
      : alert.resolution === 'no_data' ? 'no data' : alert.resolution || 'resolved';
    return el('span', null, timeAbs(alert.resolved_at), el('span', { className: 'muted', text: ` · ${how}` }));
  }

  function renderHistory() {
    const rows = state.history.rows || [];
    $('#alert-history tbody').replaceChildren(...rows.map((a) => el('tr', {
      dataset: { alertId: a.id, status: a.status || '', severity: a.severity || '', rule: a.rule || '' },
    },
    el('td', null, timeAbs(a.started_at)),
    el('td', { text: a.rule || '—' }),
    el('td', null, severityBadge(a.severity)),
    el('td', null, statusPill(a.status)),
    el('td', null, platformChip(a.platform)),
    el('td', { className: 'num', text: `${fmtRuleValue(a.rule, a.value)} ${a.comparison || '>'} ${fmtRuleValue(a.rule, a.threshold)}` }),
    el('td', null, fmtEnded(a)),
    el('td', { text: a.acknowledged_by || '—' }),
    el('td', { className: 'wrap', text: historyNote(a) || '—' }))));
    show($('#history-none'), rows.length === 0);
    show($('#alert-history-table').closest('.table-wrap'), rows.length > 0);
    markLoaded('#alert-history');
    $('#history-prev').disabled = state.history.stack.length === 0;
    $('#history-next').disabled = !state.history.next;
    setText('#history-page', `Page ${state.history.stack.length + 1}`);
  }

  async function pageHistory(direction) {
    const h = state.history;
    if (direction > 0) {
      if (!h.next) return;
      h.stack.push(h.cursor);
      h.cursor = h.next;
    } else {
      if (!h.stack.length) return;
      h.cursor = h.stack.pop();
    }
    $('#history-prev').disabled = true;
    $('#history-next').disabled = true;
    await runLoads([['history', loadHistory]]);
    renderHistory();
  }

  function onHistoryFilterChange() {
    state.history.cursor = null;
    state.history.stack = [];
    runLoads([['history', loadHistory]]);
  }

  // ------------------------------------------------------------ filters and URL

  function readFiltersFromUrl() {
    const params = new URLSearchParams(location.search);
    const platform = params.get('platform');
    const window = params.get('window');
    const type = params.get('type');
    state.filters = {
      platform: platform && PLATFORM_RE.test(platform) ? platform : 'all',
      window: WINDOWS.includes(window) ? window : DEFAULT_WINDOW,
      type: type && Object.prototype.hasOwnProperty.call(TYPE_PREFIX, type) ? type : 'all',
    };
    if (state.filters.platform !== 'all') notePlatforms([state.filters.platform]);
  }

  /** Keeps the view shareable: ?window=…[&platform=…][&type=…]; other parameters are left alone. */
  function writeFiltersToUrl() {
    const params = new URLSearchParams(location.search);
    const { platform, window, type } = state.filters;
    params.set('window', window);
    if (platform === 'all') params.delete('platform'); else params.set('platform', platform);
    if (type === 'all') params.delete('type'); else params.set('type', type);
    const qs = params.toString();
    history.replaceState(history.state, '', `${location.pathname}${qs ? `?${qs}` : ''}${location.hash}`);
  }

  function syncFilterControls() {
    renderPlatformOptions();
    $('#filter-platform').value = state.filters.platform;
    $('#filter-window').value = state.filters.window;
    $('#filter-type').value = state.filters.type;
  }

  function onFilterChange(event) {
    const before = { ...state.filters };
    state.filters = {
      platform: $('#filter-platform').value,
      window: $('#filter-window').value,
      type: $('#filter-type').value,
    };
    writeFiltersToUrl();
    resetEventPaging();
    const metricsChanged = before.platform !== state.filters.platform || before.window !== state.filters.window;
    if (event && event.target && event.target.id === 'filter-type' && !metricsChanged) {
      refreshView({ metrics: false });
    } else {
      refreshView();
    }
  }

  // --------------------------------------------------------------------- export

  function csvCell(value) {
    if (value === null || value === undefined) return '';
    let text = typeof value === 'object' ? JSON.stringify(value) : String(value);
    // Keep spreadsheets from evaluating server-supplied text as a formula.
    if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
    return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
  }

  function toCsv(rows) {
    return rows.map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
  }

  /**
   * The current view as one CSV table: summary rows (section=summary, one per
   * platform/group/field) followed by the events of the current page
   * (section=event).
   */
  function exportCsv() {
    const rows = [['section', 'platform', 'group', 'field', 'value', 'id', 'occurred_at', 'received_at', 'name', 'labels']];
    const summary = state.summary;
    if (summary) {
      const entries = [...(summary.platforms || []), summary.totals ? { ...summary.totals, platform: 'all' } : null].filter(Boolean);
      for (const entry of entries) {
        for (const [group, , fields] of GROUPS) {
          for (const [field] of fields) {
            const value = entry[group] ? entry[group][field] : null;
            rows.push(['summary', entry.platform, group, field, value ?? '', '', '', '', '', '']);
          }
        }
      }
    }
    for (const e of state.events.rows || []) {
      rows.push(['event', e.platform || '', '', '', e.value, e.id, e.occurred_at, e.received_at, e.name, e.labels || {}]);
    }
    download(`${exportBaseName()}.csv`, 'text/csv;charset=utf-8', toCsv(rows));
  }

  function exportJson() {
    const payload = {
      exported_at: new Date().toISOString(),
      filters: { ...state.filters, events_page: state.events.stack.length + 1, events_cursor: state.events.cursor },
      summary: state.summary,
      events: state.events.rows || [],
      events_next_cursor: state.events.next,
    };
    download(`${exportBaseName()}.json`, 'application/json', `${JSON.stringify(payload, null, 2)}\n`);
  }

  function exportBaseName() {
    const { platform, window, type } = state.filters;
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
    return `tocsin-${window}-${platform}-${type.replace(/\./g, '-')}-${stamp}`;
  }

  function download(filename, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const link = el('a', { href: url, download: filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  // ----------------------------------------------------------------- live stream

  const STREAM_TEXT = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', offline: 'offline' };

  function setStreamState(next) {
    const previous = state.streamState;
    state.streamState = next;
    const node = $('#stream-status');
    node.dataset.state = next;
    node.textContent = STREAM_TEXT[next] || next;
    node.title = next === 'live' ? 'Alert changes arrive as they happen' : 'Live updates are down; polling every 30 s';
    // When auto-refresh is paused, the stream's health decides whether alerts are polled.
    if (previous !== next && !state.autoRefresh && !state.failing && (previous === 'live' || next === 'live')) scheduleNext();
  }

  function connectStream() {
    closeStream();
    if (!state.session) return;
    if (typeof EventSource === 'undefined') {
      setStreamState('offline');
      return;
    }
    setStreamState(state.streamEverLive ? 'reconnecting' : 'connecting');
    const source = new EventSource('/api/monitoring/stream');
    state.stream = source;
    const alive = () => {
      state.streamLastMessage = Date.now();
      if (state.streamState !== 'live') onStreamLive();
    };
    source.addEventListener('open', alive);
    source.addEventListener('hello', (event) => {
      alive();
      // The server's own notification connection came back: changes may
      // have been missed meanwhile.
      if (typeof event.data === 'string' && event.data.includes('"resync":true')) runLoads([['alerts', loadActiveAlerts]]);
    });
    source.addEventListener('ping', alive);
    source.addEventListener('alert', (event) => {
      alive();
      let message;
      try {
        message = JSON.parse(event.data);
      } catch (_) {
        return;
      }
      if (message && typeof message === 'object' && message.alert && typeof message.type === 'string') {
        applyAlert(message.alert, message.type);
      }
    });
    source.addEventListener('error', () => {
      if (source !== state.stream) return;
      setStreamState('reconnecting');
      // CONNECTING: the browser retries by itself. CLOSED (a non-200 answer such as
      // 503 or 401): it gave up, so reconnect with backoff.
      if (source.readyState === EventSource.CLOSED) scheduleStreamReconnect();
    });
  }

  function onStreamLive() {
    const recovered = state.streamEverLive;
    state.streamEverLive = true;
    state.streamRetryMs = 1000;
    setStreamState('live');
    // Alert changes may have been missed while the stream was down.
    if (recovered) runLoads([['alerts', loadActiveAlerts]]);
  }

  function scheduleStreamReconnect() {
    closeStream(false);
    clearTimeout(state.streamTimer);
    const delay = state.streamRetryMs;
    state.streamRetryMs = Math.min(state.streamRetryMs * 2, MAX_BACKOFF_MS);
    state.streamTimer = setTimeout(connectStream, delay);
  }

  function closeStream(clearTimer = true) {
    if (clearTimer) clearTimeout(state.streamTimer);
    if (state.stream) {
      state.stream.close();
      state.stream = null;
    }
  }

  /** A stream that went quiet (no ping for 45 s) is treated as dead and reopened. */
  function checkStreamSilence() {
    if (state.session && state.stream && state.streamState === 'live' && Date.now() - state.streamLastMessage > STREAM_SILENCE_MS) {
      setStreamState('reconnecting');
      scheduleStreamReconnect();
    }
  }

  // ------------------------------------------------------------ session / login

  function setView(view) {
    document.body.dataset.view = view;
    show($('#boot'), view === 'boot');
    show($('#login-view'), view === 'login');
    show($('#dashboard'), view === 'dashboard');
    show($('#footer'), view === 'dashboard');
    show($('#session-bar'), view === 'dashboard');
  }

  function validSession(data) {
    return data && typeof data === 'object' && typeof data.name === 'string' && Array.isArray(data.scopes);
  }

  async function checkSession() {
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
        // Nothing to show yet: say so, and keep trying.
        state.backoffMs = state.backoffMs ? Math.min(state.backoffMs * 2, MAX_BACKOFF_MS) : FIRST_BACKOFF_MS;
        setText('#boot-message', "Cannot reach Tocsin's API. Retrying…");
        setText('#error-banner-detail', `Last error: ${err.describe()}`);
        setText('#error-banner-next', `Next attempt in ${Math.round(state.backoffMs / 1000)} s`);
        show($('#error-banner'), true);
        state.bootTimer = setTimeout(checkSession, state.backoffMs);
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

  async function onLoginSubmit(event) {
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
  function onUnauthorized(message) {
    if (!state.session) return;
    teardown();
    showLogin(`Your session has ended (${message}). Sign in again.`);
  }

  async function logout() {
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
    state.summary = null;
    state.series = { upload: null, webhook: null };
    state.events = { rows: null, next: null, cursor: null, stack: [] };
    state.history = { rows: null, next: null, cursor: null, stack: [] };
    state.activeAlerts = new Map();
    state.noteForm = null;
    state.rules = null;
    state.deadLettersSupported = true;
    for (const selector of ['#active-alerts', '#platform-metrics', '#events-table tbody', '#worker-status tbody', '#dead-letters tbody', '#alert-history tbody', '#run-checks-result']) {
      $(selector).replaceChildren();
    }
    for (const figure of $$('.chart-card')) {
      $('.chart-body', figure).replaceChildren();
      $('.legend', figure).replaceChildren();
    }
    for (const id of ['stat-upload-success-rate', 'stat-oauth-failures', 'stat-webhook-latency', 'stat-token-failures']) setStat(id, '—', null, '', false);
    $$('[data-section-error]').forEach((node) => { node.hidden = true; });
    $$('[data-loaded]').forEach((node) => { node.dataset.loaded = 'false'; });
    document.title = 'Tocsin';
    delete document.body.dataset.ready;
  }

  // ---------------------------------------------------------------------- wiring

  function wire() {
    $('#login-form').addEventListener('submit', onLoginSubmit);
    $('#logout').addEventListener('click', logout);
    $('#controls').addEventListener('submit', (ev) => ev.preventDefault());
    for (const id of ['filter-platform', 'filter-window', 'filter-type']) $(`#${id}`).addEventListener('change', onFilterChange);
    $('#refresh').addEventListener('click', () => refreshAll());
    $('#auto-refresh').addEventListener('change', (ev) => {
      state.autoRefresh = ev.target.checked;
      renderLastUpdated();
      if (!state.failing) scheduleNext();
    });
    $('#export-csv').addEventListener('click', exportCsv);
    $('#export-json').addEventListener('click', exportJson);
    $('#error-banner-retry').addEventListener('click', () => (state.session ? refreshAll() : checkSession()));
    $('#copy-curl').addEventListener('click', copyCurl);
    $('#events-prev').addEventListener('click', () => pageEvents(-1));
    $('#events-next').addEventListener('click', () => pageEvents(1));
    $('#history-prev').addEventListener('click', () => pageHistory(-1));
    $('#history-next').addEventListener('click', () => pageHistory(1));
    $('#history-filters').addEventListener('submit', (ev) => {
      ev.preventDefault();
      onHistoryFilterChange();
    });
    $('#history-filters').addEventListener('change', onHistoryFilterChange);
    $('#run-checks').addEventListener('click', runChecks);
    // Back from a background tab after a while: catch up at once.
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible' && state.session && state.autoRefresh && !state.failing
        && Date.now() - state.lastUpdated > REFRESH_MS) refreshAll();
    });
    setInterval(refreshRelativeTimes, 15000);
    setInterval(checkStreamSilence, 10000);
    watchChartSizes();
  }

  function init() {
    setView('boot');
    wire();
    readFiltersFromUrl();
    syncFilterControls();
    $('#auto-refresh').checked = state.autoRefresh;
    checkSession();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
