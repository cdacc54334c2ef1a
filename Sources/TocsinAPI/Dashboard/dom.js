/**
 * DOM helpers and the small widgets every section uses (times, chips,
 * badges). Server data only ever goes in through textContent and
 * attributes — never innerHTML — and styles only through the CSSOM, as the
 * Content-Security-Policy requires.
 */

import { SEVERITY_COLOR } from './config.js';
import { fmtAgo, fmtDateTime, fullFormat, parseTime } from './format.js';
import { colorFor, serverNow } from './state.js';

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => Array.from(root.querySelectorAll(selector));
const SVG_NS = 'http://www.w3.org/2000/svg';

/** Appends children: strings become text nodes; null/false/undefined are skipped; arrays are flattened. */
function append(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/**
 * Sets properties on an element. `text` → textContent, `className`,
 * `dataset` (object), `on` (object of event listeners); anything else is an
 * attribute (true → empty attribute, false/null/undefined → skipped).
 */
export function setProps(node, props) {
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'text') node.textContent = String(value);
    else if (key === 'className') node.setAttribute('class', value);
    else if (key === 'dataset') {
      for (const [k, v] of Object.entries(value)) if (v !== undefined && v !== null) node.dataset[k] = String(v);
    } else if (key === 'on') {
      for (const [type, handler] of Object.entries(value)) node.addEventListener(type, handler);
    } else node.setAttribute(key, value === true ? '' : String(value));
  }
  return node;
}

export function el(tag, props, ...children) {
  return append(setProps(document.createElement(tag), props), children);
}

export function svgEl(tag, props, ...children) {
  return append(setProps(document.createElementNS(SVG_NS, tag), props), children);
}

/** Like replaceChildren, but skips null/false children (replaceChildren would print "null"). */
export function fill(node, ...children) {
  node.replaceChildren();
  return append(node, children);
}

/** Marks a section as having received data at least once (hides its "Loading…" placeholder). */
export function markLoaded(selector) {
  const node = $(selector);
  if (node) node.dataset.loaded = 'true';
}

/** Text of the placeholders of sections that never received data. */
export function setPendingText(text) {
  for (const node of $$('.pending-state')) node.textContent = text;
}

export function show(node, visible) {
  if (node) node.hidden = !visible;
}

export function setText(selector, text) {
  const node = typeof selector === 'string' ? $(selector) : selector;
  if (node) node.textContent = text;
}

export function dash() {
  return el('span', { className: 'dash', text: '—' });
}

/** A <time> showing "12 min ago" that the 15-second ticker keeps current; the absolute time is its tooltip. */
export function timeAgo(iso) {
  const ms = parseTime(iso);
  if (!Number.isFinite(ms)) return dash();
  return el('time', { datetime: iso, title: fullFormat.format(ms), dataset: { rel: 'ago' }, text: fmtAgo(ms, serverNow()) });
}

/** A <time> showing the absolute local time, with the relative time as its tooltip. */
export function timeAbs(iso) {
  const ms = parseTime(iso);
  if (!Number.isFinite(ms)) return dash();
  return el('time', { datetime: iso, title: `${fullFormat.format(ms)} (${fmtAgo(ms, serverNow())})`, text: fmtDateTime(ms) });
}

export function refreshRelativeTimes() {
  const now = serverNow();
  for (const node of $$('time[data-rel="ago"]')) node.textContent = fmtAgo(parseTime(node.getAttribute('datetime')), now);
}

export function swatch(color, extraClass) {
  const node = el('span', { className: extraClass ? `swatch ${extraClass}` : 'swatch', 'aria-hidden': 'true' });
  if (color) node.style.background = color; // CSSOM: allowed under the CSP
  return node;
}

export function platformChip(platform) {
  if (!platform) return dash();
  return el('span', { className: 'platform-chip' }, swatch(colorFor(platform)), platform);
}

export function severityBadge(severity) {
  const known = Object.prototype.hasOwnProperty.call(SEVERITY_COLOR, severity);
  return el('span', { className: known ? `badge sev-${severity}` : 'badge', text: severity || 'unknown' });
}

export function statusPill(status) {
  return el('span', { className: 'status', dataset: { status }, text: status || 'unknown' });
}
