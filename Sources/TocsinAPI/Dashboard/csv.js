/**
 * CSV for Export CSV: RFC 4180 cells (quoted when they hold a comma, a
 * quote, a line break or edge spaces; spreadsheet formulas defused), and
 * the table of the current view — summary rows, then the events of the page.
 * Pure: no DOM.
 */

import { GROUPS } from './model.js';

/** One cell. null/undefined → empty; objects → JSON; strings that start like a formula get a leading '. */
export function csvCell(value) {
  if (value === null || value === undefined) return '';
  let text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  // Keep spreadsheets from evaluating server-supplied text as a formula.
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) || text !== text.trim() ? `"${text.replace(/"/g, '""')}"` : text;
}

/** Rows (arrays of values) as CSV text with CRLF line ends, the last line ended too. */
export function toCsv(rows) {
  return rows.map((row) => row.map(csvCell).join(',')).join('\r\n') + '\r\n';
}

export const EXPORT_HEADER = ['section', 'platform', 'group', 'field', 'value', 'id', 'occurred_at', 'received_at', 'name', 'labels'];

/**
 * The current view as one table: a header, summary rows (section=summary,
 * one per platform/group/field, the totals as platform "all"), then the
 * events (section=event).
 */
export function exportRows(summary, events) {
  const rows = [EXPORT_HEADER];
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
  for (const e of events || []) {
    rows.push(['event', e.platform || '', '', '', e.value, e.id, e.occurred_at, e.received_at, e.name, e.labels || {}]);
  }
  return rows;
}

/** The export's file name without extension: tocsin-24h-all-token-refresh-2026-11-29-14-05-09. */
export function exportBaseName({ platform, window, type }, date = new Date()) {
  const stamp = date.toISOString().slice(0, 19).replace(/[:T]/g, '-');
  return `tocsin-${window}-${platform}-${type.replace(/\./g, '-')}-${stamp}`;
}
