/**
 * The view's state in the page URL, so a view can be shared or reloaded:
 * ?window=…&platform=…&type=… (other parameters and the #hash are kept).
 * `window` is written only when the user picked one, which is how a reload
 * still knows the window is the default one (and the charts may fit young
 * data). Also: which links from server data may become hrefs.
 * Pure: works on strings, no DOM.
 */

import { DEFAULT_WINDOW, PLATFORM_RE, TYPE_PREFIX, WINDOWS } from './config.js';

/**
 * The filters in a query string ("?a=b" or "a=b"). Unknown or malformed
 * values fall back to the defaults. `windowExplicit` tells whether the
 * query named a valid window.
 */
export function parseFilters(search) {
  const params = new URLSearchParams(search || '');
  const platform = params.get('platform');
  const window = params.get('window');
  const type = params.get('type');
  const windowExplicit = WINDOWS.includes(window);
  return {
    filters: {
      platform: platform && PLATFORM_RE.test(platform) ? platform : 'all',
      window: windowExplicit ? window : DEFAULT_WINDOW,
      type: type && Object.prototype.hasOwnProperty.call(TYPE_PREFIX, type) ? type : 'all',
    },
    windowExplicit,
  };
}

/**
 * The query string (without "?") with the filters written into `search`:
 * window only when explicit, platform and type only when not "all"; other
 * parameters are left alone.
 */
export function filtersQuery(search, { platform, window, type }, windowExplicit) {
  const params = new URLSearchParams(search || '');
  if (windowExplicit) params.set('window', window); else params.delete('window');
  if (platform === 'all') params.delete('platform'); else params.set('platform', platform);
  if (type === 'all') params.delete('type'); else params.set('type', type);
  return params.toString();
}

/** The page's URL with the filters: path, "?query" when there is one, and the hash. */
export function filtersUrl({ pathname, search, hash }, filters, windowExplicit) {
  const qs = filtersQuery(search, filters, windowExplicit);
  return `${pathname}${qs ? `?${qs}` : ''}${hash || ''}`;
}

/** Only http(s) links from server data become hrefs: the absolute URL, or null. */
export function safeUrl(text, base) {
  if (typeof text !== 'string' || !text) return null;
  try {
    const url = new URL(text, base);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.href : null;
  } catch (_) {
    return null;
  }
}
