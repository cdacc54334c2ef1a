// Unit tests of Sources/TocsinAPI/Dashboard/url-state.js: the filters in the
// query string (round trips, malformed input) and safe links.
import { test } from 'node:test';
import assert from 'node:assert/strict';

import { filtersQuery, filtersUrl, parseFilters, safeUrl } from '../../Sources/TocsinAPI/Dashboard/url-state.js';

const DEFAULTS = { platform: 'all', window: '24h', type: 'all' };

test('parseFilters: no query is the default view, window not chosen', () => {
  for (const search of ['', '?', undefined, null]) {
    assert.deepEqual(parseFilters(search), { filters: DEFAULTS, windowExplicit: false }, String(search));
  }
});

test('parseFilters reads window, platform and type, with or without "?"', () => {
  const want = { filters: { platform: 'tiktok', window: '1h', type: 'token.refresh' }, windowExplicit: true };
  assert.deepEqual(parseFilters('?window=1h&platform=tiktok&type=token.refresh'), want);
  assert.deepEqual(parseFilters('type=token.refresh&platform=tiktok&window=1h&other=1'), want);
  assert.deepEqual(parseFilters('?window=24h'), { filters: DEFAULTS, windowExplicit: true }, 'the default window, chosen');
  assert.deepEqual(parseFilters('?platform=tik%74ok').filters.platform, 'tiktok', 'percent-encoded');
});

test('parseFilters falls back to the defaults on malformed values', () => {
  const cases = {
    '?window=2h': DEFAULTS,
    '?window=': DEFAULTS,
    '?window=24H': DEFAULTS,
    '?platform=TikTok': DEFAULTS,
    '?platform=1abc': DEFAULTS,
    '?platform=%3Cscript%3E': DEFAULTS,
    [`?platform=${'a'.repeat(65)}`]: DEFAULTS,
    '?platform=%E0%A4%A': DEFAULTS,
    '?type=oauth.success': DEFAULTS,
    '?type=constructor': DEFAULTS,
    '?type=__proto__': DEFAULTS,
    '?type=toString': DEFAULTS,
    '?window=%00': DEFAULTS,
  };
  for (const [search, filters] of Object.entries(cases)) {
    assert.deepEqual(parseFilters(search), { filters, windowExplicit: false }, search);
  }
  assert.equal(parseFilters(`?platform=${'a'.repeat(64)}`).filters.platform, 'a'.repeat(64), '64 characters are allowed');
});

test('parseFilters takes the first of repeated parameters', () => {
  assert.deepEqual(parseFilters('?window=1h&window=7d&platform=a&platform=b').filters, { platform: 'a', window: '1h', type: 'all' });
  assert.equal(parseFilters('?window=bogus&window=7d').windowExplicit, false);
});

test('filtersQuery: the default view is an empty query; window only once chosen', () => {
  assert.equal(filtersQuery('', DEFAULTS, false), '');
  assert.equal(filtersQuery('', DEFAULTS, true), 'window=24h');
  assert.equal(filtersQuery('', { platform: 'tiktok', window: '7d', type: 'upload' }, true), 'window=7d&platform=tiktok&type=upload');
});

test('filtersQuery keeps other parameters and replaces or removes its own', () => {
  assert.equal(filtersQuery('?foo=1&window=1h&platform=x', DEFAULTS, false), 'foo=1');
  assert.equal(filtersQuery('?foo=1&window=1h', { ...DEFAULTS, window: '7d' }, true), 'foo=1&window=7d');
  assert.equal(filtersQuery('?window=bogus&bar=a+b', DEFAULTS, false), 'bar=a+b');
});

test('filters survive a round trip through the URL', () => {
  const platforms = ['all', 'tiktok', 'my_app-2'];
  const windows = ['15m', '1h', '24h', '7d'];
  const types = ['all', 'oauth', 'token.refresh', 'worker'];
  for (const platform of platforms) {
    for (const window of windows) {
      for (const type of types) {
        for (const windowExplicit of [true, false]) {
          if (!windowExplicit && window !== '24h') continue; // a non-default window is always explicit
          const filters = { platform, window, type };
          const back = parseFilters(`?${filtersQuery('?keep=me', filters, windowExplicit)}`);
          assert.deepEqual(back, { filters, windowExplicit }, JSON.stringify(filters));
        }
      }
    }
  }
});

test('filtersUrl: path, query when there is one, and the hash', () => {
  const at = (search, hash = '') => ({ pathname: '/monitoring', search, hash });
  assert.equal(filtersUrl(at(''), DEFAULTS, false), '/monitoring');
  assert.equal(filtersUrl(at('?window=24h', '#events'), DEFAULTS, false), '/monitoring#events');
  assert.equal(filtersUrl(at('', '#x'), { platform: 'tiktok', window: '7d', type: 'all' }, true), '/monitoring?window=7d&platform=tiktok#x');
});

test('safeUrl: http(s) links only, relative ones resolved against the base', () => {
  const base = 'http://127.0.0.1:8080';
  assert.equal(safeUrl('https://runbooks.example/high-error-rate', base), 'https://runbooks.example/high-error-rate');
  assert.equal(safeUrl('/runbooks/a b', base), 'http://127.0.0.1:8080/runbooks/a%20b');
  assert.equal(safeUrl('  https://x.example  ', base), 'https://x.example/');
  for (const bad of ['javascript:alert(1)', 'JavaScript:alert(1)', 'data:text/html,<b>x</b>', 'vbscript:x', 'file:///etc/passwd',
    'http://[', '', null, undefined, 42, {}]) {
    assert.equal(safeUrl(bad, base), null, String(bad));
  }
  assert.equal(safeUrl('/relative'), null, 'relative without a base');
});
