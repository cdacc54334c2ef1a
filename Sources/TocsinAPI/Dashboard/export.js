/**
 * Export CSV and Export JSON: the current view (summary and the events of
 * the page) downloaded as a file. The CSV itself is csv.js's.
 */

import { el } from './dom.js';
import { exportBaseName, exportRows, toCsv } from './csv.js';
import { state } from './state.js';

function download(filename, type, text) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = el('a', { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

/**
 * The current view as one CSV table: summary rows (section=summary, one per
 * platform/group/field) followed by the events of the current page
 * (section=event).
 */
export function exportCsv() {
  const rows = exportRows(state.summary, state.events.rows);
  download(`${exportBaseName(state.filters)}.csv`, 'text/csv;charset=utf-8', toCsv(rows));
}

export function exportJson() {
  const payload = {
    exported_at: new Date().toISOString(),
    filters: { ...state.filters, events_page: state.events.stack.length + 1, events_cursor: state.events.cursor },
    summary: state.summary,
    events: state.events.rows || [],
    events_next_cursor: state.events.next,
  };
  download(`${exportBaseName(state.filters)}.json`, 'application/json', `${JSON.stringify(payload, null, 2)}\n`);
}
