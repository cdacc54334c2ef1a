/**
 * Pure helpers for the notification policy's views: one line per entry of
 * an alert's delivery ledger (GET /api/monitoring/alerts/{id}/deliveries),
 * a recurring window as text, and the request body of a new silence from
 * the silence form's values. No DOM.
 */

const EVENT_TEXT = {
  routed: 'routed',
  grouped: 'grouped',
  inhibited: 'inhibited',
  silenced: 'silenced',
  muted: 'muted',
  rate_limited: 'held by the rate limit',
  released: 'released',
  repeated: 'repeated',
  escalated: 'escalated',
  sent: 'sent',
  retried: 'failed; will retry',
  dead: 'dead',
  dropped: 'dropped',
};

/** The "why" of one ledger entry, e.g. "inhibited by alert #12 (inhibit rule critical-mutes-lesser)". */
export function deliveryText(entry, formatTime = (iso) => iso) {
  if (!entry || typeof entry !== 'object') return '';
  const parts = [EVENT_TEXT[entry.event] || String(entry.event || 'unknown')];
  if (entry.event === 'grouped' && entry.notification_id != null) parts.push(`into message #${entry.notification_id}`);
  if (entry.inhibited_by != null) parts.push(`by alert #${entry.inhibited_by}`);
  if (entry.silence_id != null) parts.push(`by silence #${entry.silence_id}`);
  if (entry.time_interval) parts.push(`by time interval ${entry.time_interval}`);
  if (entry.escalation_level != null && entry.event === 'escalated') parts.push(`to level ${entry.escalation_level}`);
  if (entry.event === 'sent' && entry.notification_id != null) parts.push(`message #${entry.notification_id}`);
  if (entry.status_code != null) parts.push(`(status ${entry.status_code})`);
  if (entry.until) parts.push(`until ${formatTime(entry.until)}`);
  let text = parts.join(' ');
  if (entry.detail && !text.includes(entry.detail)) text += ` — ${entry.detail}`;
  return text;
}

/** "route #1 → slack-ops" for the entry's place. */
export function deliveryWhere(entry) {
  if (!entry) return '';
  return `${entry.route || 'no route'} → ${entry.channel || '?'}`;
}

/** Did anything reach anyone? The entries' sent count and the holds still in force. */
export function deliveryOutcome(entries) {
  const list = Array.isArray(entries) ? entries : [];
  const sent = list.filter((e) => e.event === 'sent').length;
  const held = list.filter((e) => ['inhibited', 'silenced', 'muted'].includes(e.event)).length;
  if (sent > 0) return `${sent} message${sent === 1 ? '' : 's'} sent`;
  if (held > 0) return 'held: nothing sent yet';
  if (list.some((e) => e.event === 'dropped')) return 'dropped: nothing sent';
  return list.length ? 'nothing sent yet' : 'no route sends this alert';
}

/** "monday:friday · 09:00:00–18:00:00 · Europe/Paris" for a silence's recurrence. */
export function recurrenceText(rec) {
  if (!rec || typeof rec !== 'object') return '';
  const parts = [];
  const list = (v) => (Array.isArray(v) && v.length ? v.join(', ') : null);
  if (list(rec.weekdays)) parts.push(list(rec.weekdays));
  if (Array.isArray(rec.times) && rec.times.length) parts.push(rec.times.map((t) => `${t.start}–${t.end}`).join(', '));
  if (list(rec.days_of_month)) parts.push(`days ${list(rec.days_of_month)}`);
  if (list(rec.months)) parts.push(list(rec.months));
  if (list(rec.years)) parts.push(list(rec.years));
  parts.push(rec.time_zone || 'UTC');
  return parts.join(' · ');
}

const TIME_RE = /^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$/;

/**
 * The POST /api/silences body from the form's values, or { error } for what
 * the form can tell at once (the server checks everything again).
 * values: { rule, platform, severity, days, comment, weekdays, from, to, timeZone }; `days` is how long it lasts.
 */
export function silenceBody(values, now = Date.now()) {
  const v = values || {};
  const text = (x) => (typeof x === 'string' ? x.trim() : '');
  const body = {};
  if (text(v.rule)) body.rule = text(v.rule);
  if (text(v.platform)) body.platform = text(v.platform);
  if (text(v.severity)) body.severity = text(v.severity);
  if (!body.rule && !body.platform && !body.severity) return { error: 'Give a rule, a platform or a severity.' };
  if (!text(v.comment)) return { error: 'Say why (comment).' };
  body.comment = text(v.comment);
  const days = Number(v.days);
  if (!Number.isFinite(days) || days <= 0 || days > 366) return { error: 'It lasts 1 to 366 days.' };
  body.ends_at = new Date(now + days * 86400000).toISOString();
  const weekdays = Array.isArray(v.weekdays) ? v.weekdays.filter(Boolean) : [];
  const from = text(v.from);
  const to = text(v.to);
  if (weekdays.length || from || to) {
    const recurrence = { time_zone: text(v.timeZone) || 'UTC' };
    if (weekdays.length) recurrence.weekdays = weekdays;
    if (from || to) {
      if (!TIME_RE.test(from) || !TIME_RE.test(to) || from >= to) return { error: 'Times are HH:MM, the end after the start.' };
      recurrence.times = [{ start: from, end: to }];
    }
    body.recurrence = recurrence;
  }
  return { body };
}
