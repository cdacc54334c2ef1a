/**
 * The toolbar's view filters (#filter-platform, #filter-window,
 * #filter-type): read from and written to the page URL (url-state.js), and
 * what a change reloads.
 */

import { $ } from './dom.js';
import { resetEventPaging } from './events.js';
import { notePlatforms, renderPlatformOptions } from './platforms.js';
import { refreshView } from './refresh.js';
import { state } from './state.js';
import { filtersUrl, parseFilters } from './url-state.js';

export function readFiltersFromUrl() {
  const { filters, windowExplicit } = parseFilters(location.search);
  state.filters = filters;
  state.windowExplicit = windowExplicit;
  if (state.filters.platform !== 'all') notePlatforms([state.filters.platform]);
}

/** Keeps the view shareable: [?window=…][&platform=…][&type=…]; other parameters are left alone. */
export function writeFiltersToUrl() {
  window.history.replaceState(window.history.state, '', filtersUrl(location, state.filters, state.windowExplicit));
}

export function syncFilterControls() {
  renderPlatformOptions();
  $('#filter-platform').value = state.filters.platform;
  $('#filter-window').value = state.filters.window;
  $('#filter-type').value = state.filters.type;
}

export function onFilterChange(event) {
  const before = { ...state.filters };
  const target = event && event.target ? event.target.id : '';
  state.filters = {
    platform: $('#filter-platform').value,
    window: $('#filter-window').value,
    type: $('#filter-type').value,
  };
  // A window the user picks is explicit, even the default one: the charts then show all of it.
  if (target === 'filter-window') state.windowExplicit = true;
  writeFiltersToUrl();
  resetEventPaging();
  const metricsChanged = before.platform !== state.filters.platform || before.window !== state.filters.window;
  if (target === 'filter-type' && !metricsChanged) {
    refreshView({ metrics: false });
  } else {
    refreshView();
  }
}
