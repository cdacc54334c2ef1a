/**
 * The live stream (GET /api/monitoring/stream, server-sent events): alert
 * changes pushed as they happen, the #stream-status badge, reconnecting
 * with backoff, and treating a silent stream as dead.
 */

import { applyAlert, reloadActiveAlerts } from './alerts.js';
import { MAX_BACKOFF_MS, STREAM_SILENCE_MS } from './config.js';
import { $ } from './dom.js';
import { scheduleNext } from './refresh.js';
import { state } from './state.js';

const STREAM_TEXT = { connecting: 'connecting…', live: 'live', reconnecting: 'reconnecting…', offline: 'offline' };

export function setStreamState(next) {
  const previous = state.streamState;
  state.streamState = next;
  const node = $('#stream-status');
  node.dataset.state = next;
  node.textContent = STREAM_TEXT[next] || next;
  node.title = next === 'live' ? 'Alert changes arrive as they happen' : 'Live updates are down; polling every 30 s';
  // When auto-refresh is paused, the stream's health decides whether alerts are polled.
  if (previous !== next && !state.autoRefresh && !state.failing && (previous === 'live' || next === 'live')) scheduleNext();
}

/** An `alert` event: {type: "alert.fired" | …, alert: Alert}. */
function onAlertMessage(event) {
  let message;
  try {
    message = JSON.parse(event.data);
  } catch (_) {
    return;
  }
  if (message && typeof message === 'object' && message.alert && typeof message.type === 'string') {
    applyAlert(message.alert, message.type);
  }
}

export function connectStream() {
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
    if (typeof event.data === 'string' && event.data.includes('"resync":true')) reloadActiveAlerts();
  });
  source.addEventListener('ping', alive);
  source.addEventListener('alert', (event) => {
    alive();
    onAlertMessage(event);
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
  if (recovered) reloadActiveAlerts();
}

function scheduleStreamReconnect() {
  closeStream(false);
  clearTimeout(state.streamTimer);
  const delay = state.streamRetryMs;
  state.streamRetryMs = Math.min(state.streamRetryMs * 2, MAX_BACKOFF_MS);
  state.streamTimer = setTimeout(connectStream, delay);
}

export function closeStream(clearTimer = true) {
  if (clearTimer) clearTimeout(state.streamTimer);
  if (state.stream) {
    state.stream.close();
    state.stream = null;
  }
}

/** A stream that went quiet (no ping for 45 s) is treated as dead and reopened. */
export function checkStreamSilence() {
  if (state.session && state.stream && state.streamState === 'live' && Date.now() - state.streamLastMessage > STREAM_SILENCE_MS) {
    setStreamState('reconnecting');
    scheduleStreamReconnect();
  }
}
