// Unit tests of Sources/TocsinAPI/Dashboard/api.js: URLs, error bodies, and
// the fetch client's headers and failure handling, against a stubbed fetch.
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';

import { ApiError, api, buildUrl, errorFromBody, onUnauthorized, request } from '../../Sources/TocsinAPI/Dashboard/api.js';
import { state } from '../../Sources/TocsinAPI/Dashboard/state.js';

const nativeFetch = globalThis.fetch;
afterEach(() => {
  globalThis.fetch = nativeFetch;
  state.session = null;
  onUnauthorized(() => {});
});

/** Replaces fetch with one answering `respond(url, init)`; returns the calls made. */
function stubFetch(respond) {
  const calls = [];
  globalThis.fetch = async (url, init) => {
    calls.push({ url, init });
    return respond(url, init);
  };
  return calls;
}

const json = (body, status = 200) => new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });

test('buildUrl leaves out undefined, null and empty values and encodes the rest', () => {
  assert.equal(buildUrl('/api/x'), '/api/x');
  assert.equal(buildUrl('/api/x', {}), '/api/x');
  assert.equal(buildUrl('/api/x', { a: undefined, b: null, c: '' }), '/api/x');
  assert.equal(buildUrl('/api/x', { window: '24h', limit: 50, name: 'oauth.*', zero: 0, no: false }),
    '/api/x?window=24h&limit=50&name=oauth.*&zero=0&no=false');
  assert.equal(buildUrl('/api/x', { q: 'a b&c=d' }), '/api/x?q=a+b%26c%3Dd');
});

test('ApiError.describe: status and code before the message', () => {
  assert.equal(new ApiError('boom').describe(), 'boom');
  assert.equal(new ApiError('bad', { status: 400 }).describe(), 'HTTP 400: bad');
  assert.equal(new ApiError('bad', { status: 400, code: 'invalid' }).describe(), 'HTTP 400 invalid: bad');
  assert.equal(new ApiError('x').unreachable, false);
});

test('errorFromBody: Tocsin\'s error body with its details; a fallback without one', () => {
  const body = { error: { code: 'invalid_request', message: 'invalid batch',
    details: [{ index: 0, field: 'name', reason: 'unknown' }, { field: 'value' }, 'plain'] } };
  const err = errorFromBody({ status: 400, statusText: 'Bad Request' }, body, '/api/metrics');
  assert.equal(err.message, 'invalid batch (#0 name unknown; value; plain)');
  assert.equal(err.code, 'invalid_request');
  assert.equal(err.unreachable, false);
  const bare = errorFromBody({ status: 502, statusText: 'Bad Gateway' }, '<html>', '/api/x');
  assert.equal(bare.message, 'Bad Gateway (/api/x)');
  assert.equal(bare.unreachable, true);
  assert.equal(errorFromBody({ status: 404, statusText: '' }, null, '/p').message, 'request failed (/p)');
  assert.equal(errorFromBody({ status: 400 }, { error: { details: [{ reason: 'r' }] } }, '/p').message, 'r');
  assert.equal(errorFromBody({ status: 400 }, { error: 'text' }, '/p').code, '');
});

test('GET: JSON answer, same-origin cookies, no cache, no CSRF header', async () => {
  state.session = { name: 'a', scopes: ['admin'], csrf_token: 'tok' };
  const calls = stubFetch(() => json({ ok: true }));
  assert.deepEqual(await api.get('/api/rules', { window: '1h', platform: null }), { ok: true });
  assert.equal(calls[0].url, '/api/rules?window=1h');
  assert.equal(calls[0].init.method, 'GET');
  assert.equal(calls[0].init.credentials, 'same-origin');
  assert.equal(calls[0].init.cache, 'no-store');
  assert.deepEqual(calls[0].init.headers, { Accept: 'application/json' });
  assert.equal(calls[0].init.body, undefined);
});

test('POST sends JSON with the session\'s CSRF token', async () => {
  state.session = { name: 'a', scopes: ['admin'], csrf_token: 'tok' };
  const calls = stubFetch(() => json({ alert: { id: 1 } }));
  await api.post('/api/monitoring/alerts', { id: 1, action: 'acknowledge' });
  assert.deepEqual(calls[0].init.headers, { Accept: 'application/json', 'X-CSRF-Token': 'tok', 'Content-Type': 'application/json' });
  assert.equal(calls[0].init.body, '{"id":1,"action":"acknowledge"}');
  state.session = null;
  await request('DELETE', '/monitoring/session', { auth: false });
  assert.equal(calls[1].init.headers['X-CSRF-Token'], undefined, 'no session, no token');
});

test('204 resolves to null; a non-JSON 200 is not Tocsin answering', async () => {
  stubFetch(() => new Response(null, { status: 204 }));
  assert.equal(await api.post('/api/notifications/1/retry'), null);
  stubFetch(() => new Response('<html>proxy</html>', { status: 200, headers: { 'Content-Type': 'text/html; charset=utf-8' } }));
  await assert.rejects(api.get('/api/rules'), (err) => err instanceof ApiError && err.unreachable && err.status === 200
    && err.message === 'unexpected text/html answer from /api/rules');
  stubFetch(() => new Response('{not json', { status: 200, headers: { 'Content-Type': 'application/json' } }));
  await assert.rejects(api.get('/api/rules'), (err) => err.unreachable && err.message === 'unreadable answer from /api/rules');
});

test('4xx is a section error, 5xx makes the API unreachable', async () => {
  stubFetch(() => json({ error: { code: 'invalid', message: 'bad window' } }, 400));
  await assert.rejects(api.get('/api/monitoring/metrics'), (err) => err.status === 400 && !err.unreachable
    && err.describe() === 'HTTP 400 invalid: bad window');
  stubFetch(() => json({ error: { code: 'database_unavailable', message: 'down' } }, 503));
  await assert.rejects(api.get('/api/monitoring/metrics'), (err) => err.status === 503 && err.unreachable);
});

test('401 calls the unauthorized handler, unless auth is off', async () => {
  const ended = [];
  onUnauthorized((message) => ended.push(message));
  stubFetch(() => json({ error: { code: 'unauthorized', message: 'session expired' } }, 401));
  await assert.rejects(api.get('/api/rules'), (err) => err.status === 401);
  assert.deepEqual(ended, ['session expired']);
  await assert.rejects(request('GET', '/monitoring/session', { auth: false }), (err) => err.status === 401);
  assert.deepEqual(ended, ['session expired'], 'not called again');
});

test('network errors and timeouts are unreachable errors', async () => {
  stubFetch(() => { throw new TypeError('Failed to fetch'); });
  await assert.rejects(api.get('/api/rules'), (err) => err instanceof ApiError && err.unreachable
    && err.message === 'network error on /api/rules: Failed to fetch');
  globalThis.fetch = (url, init) => new Promise((_, reject) => {
    init.signal.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError')));
  });
  await assert.rejects(request('GET', '/api/slow', { timeoutMs: 20 }), (err) => err.unreachable
    && err.message === 'no answer from /api/slow within 0.02 s');
});

test('the largest X-Tocsin-Read-Lag of a refresh is kept; answers from the primary count as fresh', async () => {
  state.refreshLag = 0;
  let lag = '7.250';
  stubFetch(() => new Response('{}', {
    status: 200,
    headers: lag ? { 'Content-Type': 'application/json', 'X-Tocsin-Read-Lag': lag } : { 'Content-Type': 'application/json' },
  }));
  await api.get('/api/monitoring/metrics');
  assert.equal(state.refreshLag, 7.25);
  lag = '1.000';
  await api.get('/api/rules');
  lag = null;
  await api.get('/api/monitoring/alerts');
  assert.equal(state.refreshLag, 7.25);
  state.refreshLag = 0;
});
