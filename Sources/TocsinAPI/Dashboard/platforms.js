/**
 * The platforms the page knows (tiktok, instagram, and every valid name
 * seen in an answer since), listed in the toolbar's and the alert history's
 * platform selects.
 */

import { $, el } from './dom.js';
import { newPlatforms } from './model.js';
import { state } from './state.js';

/** Remembers platforms seen in any answer; the platform selects list them. */
export function notePlatforms(list) {
  const added = newPlatforms(list, state.platforms);
  for (const p of added) state.platforms.add(p);
  if (added.length) renderPlatformOptions();
}

export function renderPlatformOptions() {
  const names = [...state.platforms].sort();
  const fillSelect = (select, allValue, allLabel) => {
    const selected = select.value;
    select.replaceChildren(
      el('option', { value: allValue, text: allLabel }),
      ...names.map((p) => el('option', { value: p, text: p })),
    );
    select.value = names.includes(selected) ? selected : allValue;
  };
  fillSelect($('#filter-platform'), 'all', 'All platforms');
  fillSelect($('#history-platform'), '', 'Any');
  $('#filter-platform').value = state.filters.platform;
}
