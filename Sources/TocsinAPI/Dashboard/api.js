/**
 * The fetch client: the one place that talks to the server. Same-origin
 * requests with the session cookie, X-CSRF-Token on every non-GET, a
 * timeout, JSON bodies, and ApiError for every failure (with `unreachable`
 * set for network errors, timeouts and 5xx). A 401 calls the handler set
 * with onUnauthorized (the sign-in module's). No DOM.
 */

import { REQUEST_TIMEOUT_MS } from './config.js';
import { parseReadLag } from './staleness.js';
import { state } from './state.js';

export class ApiError extends Error {
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

/** `path?query`, leaving out undefined, null and empty values. */
export function buildUrl(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

/** The ApiError of a non-2xx answer, from Tocsin's {"error": {code, message, details}} body when there is one. */
export function errorFromBody(response, body, path) {
  const error = body && typeof body === 'object' && body.error && typeof body.error === 'object' ? body.error : null;
  let message = error && typeof error.message === 'string' ? error.message : '';
  const details = error && Array.isArray(error.details) ? error.details : [];
  if (details.length) {
    const text = details
      .map((d) => (d && typeof d === 'object'
        ? [d.index !== undefined ? `#${d.index}` : '', d.field, d.reason].filter(Boolean).join(' ')
        : String(d)))
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

let unauthorizedHandler = () => {};

/** Sets what a 401 answer to an authenticated request does (it gets the error message). */
export function onUnauthorized(handler) {
  unauthorizedHandler = handler;
}

/** fetch with a timeout; network failures and timeouts become unreachable ApiErrors. */
async function send(method, path, { query, body, timeoutMs }) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET' && state.session && state.session.csrf_token) headers['X-CSRF-Token'] = state.session.csrf_token;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    return await fetch(buildUrl(path, query), {
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
}

/**
 * One request. Resolves to the parsed JSON body (or the text for non-JSON
 * answers); throws ApiError. A 401 calls the unauthorized handler unless
 * `auth: false` (the session endpoints themselves).
 */
export async function request(method, path, { query, body, auth = true, timeoutMs = REQUEST_TIMEOUT_MS } = {}) {
  const response = await send(method, path, { query, body, timeoutMs });
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
    state.refreshLag = Math.max(state.refreshLag, parseReadLag(response.headers.get('X-Tocsin-Read-Lag')));
    // A proxy's HTML error page with a 200 is not Tocsin answering.
    if (type && !type.includes('json') && response.status !== 204) {
      throw new ApiError(`unexpected ${type.split(';')[0]} answer from ${path}`, { status: response.status, unreachable: true });
    }
    return data;
  }
  const error = errorFromBody(response, data, path);
  if (response.status === 401 && auth) unauthorizedHandler(error.message);
  throw error;
}

export const api = {
  get: (path, query, options) => request('GET', path, { ...options, query }),
  post: (path, body, options) => request('POST', path, { ...options, body }),
  delete: (path, options) => request('DELETE', path, options),
};
