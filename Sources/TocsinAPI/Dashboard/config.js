/**
 * Constants of the dashboard: time windows and buckets, polling intervals,
 * page sizes, colours and sort ranks. Plain data, no imports: safe to load
 * anywhere, Node included.
 */

export const WINDOWS = ['15m', '1h', '24h', '7d'];
export const DEFAULT_WINDOW = '24h';
export const WINDOW_LABEL = {
  '15m': 'the last 15 minutes', '1h': 'the last hour', '24h': 'the last 24 hours', '7d': 'the last 7 days',
};
export const BUCKET_FOR_WINDOW = { '15m': '1m', '1h': '1m', '24h': '5m', '7d': '1h' };
export const BUCKET_SECONDS = { '1m': 60, '5m': 300, '1h': 3600, '1d': 86400 };
export const BUCKET_LABEL = { '1m': '1-minute', '5m': '5-minute', '1h': 'hourly', '1d': 'daily' };

/** Event-type filter → the `name` prefix filter of GET /api/monitoring/events. */
export const TYPE_PREFIX = {
  all: null, oauth: 'oauth.*', upload: 'upload.*', webhook: 'webhook.*',
  'token.refresh': 'token.refresh.*', api: 'api.*', worker: 'worker.*',
};

export const KNOWN_PLATFORMS = ['tiktok', 'instagram'];
export const PLATFORM_RE = /^[a-z][a-z0-9_-]{0,63}$/;

export const REFRESH_MS = 30000;
// Beyond this replica lag (X-Tocsin-Read-Lag), the toolbar says "data as of …".
export const STALE_LAG_S = 5;
export const FIRST_BACKOFF_MS = 2000;
export const MAX_BACKOFF_MS = 30000;
export const REQUEST_TIMEOUT_MS = 20000;
export const STREAM_SILENCE_MS = 45000; // three missed pings
export const EVENTS_PAGE_SIZE = 50;
export const HISTORY_PAGE_SIZE = 50;

export const SEVERITY_COLOR = { warning: '#FFA500', error: '#FF0000', critical: '#8B0000' };
export const SEVERITY_RANK = { critical: 0, error: 1, warning: 2 };
export const STATUS_RANK = { firing: 0, pending: 1, acknowledged: 2 };
export const PLATFORM_COLORS = { tiktok: '#0e7490', instagram: '#a21caf' };
export const EXTRA_COLORS = ['#4f46e5', '#15803d', '#475569', '#0369a1', '#6d28d9', '#be185d', '#854d0e'];
export const NO_PLATFORM_COLOR = '#64748b';

export const OPEN_STATUSES = 'pending,firing,acknowledged';
