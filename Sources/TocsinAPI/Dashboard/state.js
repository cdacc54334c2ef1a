/**
 * The page's one mutable state object (session, filters, the data of every
 * section, timers, the live stream's health) and the small accessors that
 * read it: the server's clock, a platform's colour, the admin scope.
 * No DOM: the sections render from here.
 */

import {
  DEFAULT_WINDOW, EXTRA_COLORS, KNOWN_PLATFORMS, NO_PLATFORM_COLOR, PLATFORM_COLORS,
} from './config.js';
import { hasAdminScope } from './model.js';

export const state = {
  session: null,          // {name, scopes, csrf_token} while signed in
  sessionGen: 0,          // bumped at sign-out so late answers of an old session are dropped
  filters: { platform: 'all', window: DEFAULT_WINDOW, type: 'all' },
  windowExplicit: false,  // the window came from the URL or the user's choice, not the default
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
  readLag: 0,             // seconds the standby behind the last full refresh was behind (largest answer)
  refreshLag: 0,          // the largest lag seen during the refresh in progress
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

/** Forgets every piece of data of a session (at sign-out); filters, platforms and colours stay. */
export function clearSessionData() {
  state.summary = null;
  state.series = { upload: null, webhook: null };
  state.events = { rows: null, next: null, cursor: null, stack: [] };
  state.history = { rows: null, next: null, cursor: null, stack: [] };
  state.activeAlerts = new Map();
  state.noteForm = null;
  state.rules = null;
  state.deadLettersSupported = true;
}

/** The server's clock, as far as the last summary told (epoch ms). */
export function serverNow() {
  return Date.now() + state.clockSkewMs;
}

/** A platform's colour: fixed for the known ones, then the extra colours in order of first sight. */
export function colorFor(platform) {
  if (!platform) return NO_PLATFORM_COLOR;
  if (PLATFORM_COLORS[platform]) return PLATFORM_COLORS[platform];
  if (!state.colorMap.has(platform)) {
    state.colorMap.set(platform, EXTRA_COLORS[state.colorMap.size % EXTRA_COLORS.length]);
  }
  return state.colorMap.get(platform);
}

export function isAdmin() {
  return hasAdminScope(state.session);
}
