/**
 * The two chart figures (#chart-upload-error-rate, #chart-webhook-latency):
 * loading GET /api/monitoring/metrics/series, drawing each as an SVG line
 * chart at its container's pixel width (redrawn when that changes), and the
 * legends. The arithmetic is charts.js's. On the default window, when the
 * data is younger than the window, both charts' time axes start at the
 * first bucket with data (of either chart) instead of the window's start.
 */

import { api } from './api.js';
import { BUCKET_FOR_WINDOW, BUCKET_LABEL, BUCKET_SECONDS, SEVERITY_COLOR } from './config.js';
import {
  CHARTS, bucketTooltips, chartLayout, firstSampleTime, fitTimeDomain, fittedNote, legendText, linePath, mayFitToData,
  scales, seriesRuns, timeDomain, timeLabel, timeTicks, valueScale,
} from './charts.js';
import { $, $$, el, setText, svgEl, swatch } from './dom.js';
import { isNum, parseTime } from './format.js';
import { begin } from './loading.js';
import { thresholdFor } from './model.js';
import { notePlatforms } from './platforms.js';
import { colorFor, state } from './state.js';

const viewKey = ({ window, platform }) => `${window}|${platform}`;

/** Where the data of the loaded series of `view` starts (epoch ms, NaN when none has data). */
function dataStart(view) {
  return firstSampleTime(Object.values(state.series).filter((s) => s && s.view === view));
}

export async function loadSeries(which) {
  const chart = CHARTS[which];
  const current = begin(`series-${which}`);
  const { window, platform } = state.filters;
  const view = viewKey(state.filters);
  const bucket = BUCKET_FOR_WINDOW[window];
  const data = await api.get('/api/monitoring/metrics/series', {
    ...chart.query, bucket, window, platform: platform === 'all' ? null : platform,
  });
  if (!current()) return;
  const startBefore = dataStart(view);
  state.series[which] = { ...data, bucket: data.bucket || bucket, view };
  notePlatforms((data.series || []).map((s) => s && s.platform));
  renderChart(which);
  // Both charts start where the data starts: redraw the other one when that moved.
  const other = which === 'upload' ? 'webhook' : 'upload';
  if (mayFitToData(window, state.windowExplicit) && state.series[other] && !Object.is(dataStart(view), startBefore)) {
    renderChart(other);
  }
}

/**
 * The chart's time axis: the series' range, fitted to the data when that is
 * allowed and the data is younger. { t0, t1, fitted, firstSample }.
 */
function chartDomain(data, bucketMs) {
  const domain = timeDomain(parseTime(data.since), parseTime(data.until), Date.now());
  if (!mayFitToData(state.filters.window, state.windowExplicit)) return { ...domain, fitted: false, firstSample: NaN };
  const firstSample = dataStart(data.view);
  return { ...fitTimeDomain({ ...domain, firstSample, bucketMs }), firstSample };
}

export function renderChart(which) {
  const chart = CHARTS[which];
  const figure = document.getElementById(chart.id);
  const data = state.series[which];
  if (!figure || !data) return;
  figure.dataset.loaded = 'true'; // first, so the body has its real width when the chart is drawn
  const body = $('.chart-body', figure);
  const limit = thresholdFor(which, state.rules);
  const bucket = data.bucket;
  const bucketLabel = BUCKET_LABEL[bucket] || bucket;
  const bucketMs = (BUCKET_SECONDS[bucket] || 300) * 1000;
  const domain = chartDomain(data, bucketMs);
  setText($('.chart-note', figure),
    `Threshold ${chart.axis(limit.value)}${limit.rule ? ` · rule ${limit.rule.name}` : ' · default'} · ${bucketLabel} buckets`
    + (domain.fitted ? ` · ${fittedNote(domain.firstSample, domain.t1)}` : ''));

  const series = (data.series || []).filter((s) => s && Array.isArray(s.points));
  body.replaceChildren(drawLineChart(body, { chart, series, limit, bucketMs, domain }));
  renderLegend(figure, series, limit, chart);
}

function renderLegend(figure, series, limit, chart) {
  const items = series.map((s) => el('li', { dataset: { platform: s.platform || '' } }, swatch(colorFor(s.platform)), legendText(s, chart)));
  const dashed = swatch(null, 'dashed');
  dashed.style.borderTopColor = SEVERITY_COLOR[limit.severity];
  items.push(el('li', { dataset: { threshold: String(limit.value) } }, dashed, `threshold ${chart.axis(limit.value)} (${limit.severity})`));
  $('.legend', figure).replaceChildren(...items);
}

/** Horizontal grid lines with the value labels. */
function drawValueGrid(svg, { width, m }, { y, r }, ticks, chart) {
  for (const v of ticks) {
    svg.append(
      svgEl('line', { className: 'grid-line', x1: m.left, x2: width - m.right, y1: r(y(v)), y2: r(y(v)) }),
      svgEl('text', { x: m.left - 6, y: r(y(v)) + 4, 'text-anchor': 'end', text: chart.axis(v) }),
    );
  }
}

/** The time axis: its line, ticks every ~70 px at local clock boundaries, and their labels. */
function drawTimeAxis(svg, { width, height, m, plotW, plotH }, { x, r }, domain) {
  const { ticks, step } = timeTicks(domain.t0, domain.t1, Math.max(3, Math.floor(plotW / 70)));
  svg.append(svgEl('line', { className: 'axis-line', x1: m.left, x2: width - m.right, y1: m.top + plotH, y2: m.top + plotH }));
  for (const t of ticks) {
    svg.append(
      svgEl('line', { className: 'axis-line', x1: r(x(t)), x2: r(x(t)), y1: m.top + plotH, y2: m.top + plotH + 4 }),
      svgEl('text', { x: r(x(t)), y: height - 6, 'text-anchor': 'middle', text: timeLabel(t, step) }),
    );
  }
}

/** One path per platform, split where a bucket has no value; lone points also get a dot. */
function drawSeries(svg, series, { x, y, r }, bucketMs) {
  for (const s of series) {
    const colour = colorFor(s.platform);
    const runs = seriesRuns(s.points, bucketMs);
    for (const run of runs) {
      if (run.length !== 1) continue;
      const [t, v] = run[0];
      svg.append(svgEl('circle', { cx: r(x(t)), cy: r(y(v)), r: 2.5, fill: colour, dataset: { platform: s.platform || '' } }));
    }
    const d = linePath(runs, x, y, r);
    if (d) svg.append(svgEl('path', { className: 'series-line', d, stroke: colour, dataset: { platform: s.platform || '' } }));
  }
}

/** Tooltips: one transparent band per bucket inside the plot, its <title> listing every platform. */
function drawHoverBands(svg, series, { width, m, plotH }, { x, r }, { chart, bucketMs }) {
  for (const { t, title } of bucketTooltips(series, chart, bucketMs)) {
    const left = x(t);
    const right = x(t + bucketMs);
    if (right <= m.left || left >= width - m.right) continue;
    svg.append(svgEl('rect', {
      className: 'hover-band', x: r(left), y: m.top, width: r(Math.max(1, right - left)), height: plotH,
    }, svgEl('title', { text: title })));
  }
}

/**
 * An SVG line chart sized to its container: one line per platform (gaps
 * where a bucket has no value), the threshold as a dashed line, a few axis
 * labels, and one hover band per bucket whose <title> is the tooltip.
 */
function drawLineChart(container, { chart, series, limit, bucketMs, domain }) {
  const layout = chartLayout(container.clientWidth);
  const { width, height, m, plotW, plotH } = layout;
  const values = series.flatMap((s) => s.points.map((p) => p.value)).filter(isNum);
  const { yMax, ticks } = valueScale(values, limit.value);
  const scale = scales(layout, domain, yMax);

  const svg = svgEl('svg', {
    viewBox: `0 0 ${width} ${height}`, width, height, role: 'img', dataset: { chart: chart.id },
    'aria-label': `${chart.what} per platform, threshold ${chart.axis(limit.value)}`,
  });
  drawValueGrid(svg, layout, scale, ticks, chart);
  drawTimeAxis(svg, layout, scale, domain);

  // Threshold: the line under the data, its label above it.
  const color = SEVERITY_COLOR[limit.severity];
  const thresholdY = scale.r(scale.y(limit.value));
  svg.append(svgEl('line', {
    className: 'threshold', x1: m.left, x2: width - m.right, y1: thresholdY, y2: thresholdY,
    stroke: color, 'stroke-width': 1.5, 'stroke-dasharray': '6 4', dataset: { threshold: limit.value },
  }, svgEl('title', { text: `Threshold ${chart.axis(limit.value)}` })));
  drawSeries(svg, series, scale, bucketMs);
  svg.append(svgEl('text', {
    className: 'threshold-label', x: m.left + 6, y: thresholdY - 5, fill: color,
    text: `threshold ${chart.axis(limit.value)}`,
  }));
  drawHoverBands(svg, series, layout, scale, { chart, bucketMs });

  if (!values.length) {
    svg.append(svgEl('text', {
      className: 'no-data', x: m.left + plotW / 2, y: m.top + plotH / 2, 'text-anchor': 'middle', text: 'No data in this window',
    }));
  }
  return svg;
}

/** Redraws charts when their width changes (the SVG is drawn at the real pixel size for crisp text). */
export function watchChartSizes() {
  if (typeof ResizeObserver === 'undefined') return;
  const widths = new Map();
  let frame = 0;
  const observer = new ResizeObserver((entries) => {
    let changed = false;
    for (const entry of entries) {
      const w = Math.round(entry.contentRect.width);
      if (widths.get(entry.target) !== w) {
        widths.set(entry.target, w);
        changed = true;
      }
    }
    if (!changed) return;
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      renderChart('upload');
      renderChart('webhook');
    });
  });
  for (const body of $$('.chart-body')) observer.observe(body);
}
