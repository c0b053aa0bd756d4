import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';

/** uPlot's script and stylesheet, read from node_modules once: pages embed them (no CDN, works offline). */
let assets: { js: string; css: string } | undefined;
export function uplotAssets(): { js: string; css: string } {
  if (!assets) {
    const require = createRequire(import.meta.url);
    const dir = require.resolve('uplot/package.json').replace(/package\.json$/, 'dist/');
    assets = {
      js: readFileSync(`${dir}uPlot.iife.min.js`, 'utf8'),
      css: readFileSync(`${dir}uPlot.min.css`, 'utf8'),
    };
  }
  return assets;
}

/** Colour of a task status, the same in the timeline and legends. */
export const STATUS_COLOURS: Record<string, string> = {
  success: '#16a34a',
  running: '#2563eb',
  pending: '#9ca3af',
  queued: '#d1d5db',
  ready: '#d1d5db',
  failed: '#dc2626',
  outputerror: '#f97316',
  outofresource: '#a21caf',
  terminated: '#6b7280',
  invalidtask: '#7f1d1d',
  timeout: '#ea580c',
  lostconnection: '#7c3aed',
};

/** JSON for a `<script type="application/json">` block: `<` escaped so no `</script>` can end it early. */
export function jsonScript(id: string, value: unknown): string {
  return `<script type="application/json" id="${id}">${JSON.stringify(value).replace(/</g, '\\u003c')}</script>`;
}

/**
 * Browser code shared by the report and the dashboard. Each chart records what it drew in
 * `window.jtmCharts` (kind, task, points), which the browser tests compare with the samples in Redis.
 */
export const CHARTS_JS = `
window.jtmCharts = window.jtmCharts || [];
var JTM_COLOURS = ${JSON.stringify(STATUS_COLOURS)};
/**
 * A run time in seconds in the unit that suits the span shown (s, min, h, d): a 17-day task's axis read
 * "1,000,0001,200,000" in seconds, its labels run together (adversary 14 F4).
 */
function jtmDuration(secs, span) {
  var unit = span >= 2 * 86400 ? [86400, ' d'] : span >= 2 * 3600 ? [3600, ' h'] : span >= 120 ? [60, ' min'] : [1, ' s'];
  var v = secs / unit[0];
  return (Math.round(v * 10) / 10).toLocaleString('en-US') + unit[1];
}
/** Steps of the run-time axis: whole seconds, minutes, hours, days, weeks. */
var JTM_TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
  86400, 172800, 345600, 604800, 1209600, 2419200];
/**
 * A legend value: the point's under the cursor, else the series' largest ("max": the title's peak is the
 * record's). Read from the chart's data at each call: the dashboard's live chart replaces it (setData).
 */
function jtmLegendValue(u, v, s, i) {
  var num = function (x) { return x == null ? '' : (Math.round(x * 10) / 10).toLocaleString('en-US'); };
  if (i != null) return num(v);
  var values = u.data[s], peak = null;
  for (var k = 0; k < values.length; k++) if (values[k] != null && (peak == null || values[k] > peak)) peak = values[k];
  return peak == null ? '' : 'max ' + num(peak);
}
/** A legend value: the point's under the cursor, else the series' latest (uPlot shows "--" off the chart). */
function jtmLatestValue(u, v, s, i) {
  var x = i != null ? v : u.data[s][u.data[s].length - 1];
  return x == null ? '' : (Math.round(x * 10) / 10).toLocaleString('en-US');
}
/** The time column of jtmLatestValue's legend: the minute under the cursor, else the latest, as the axis (local). */
function jtmLatestMinute(u, v, s, i) {
  var t = i != null ? v : u.data[0][u.data[0].length - 1];
  return t == null ? '' : uPlot.fmtDate('{YYYY}-{MM}-{DD} {HH}:{mm}')(new Date(t * 1000)) + (i != null ? '' : ' (latest)');
}
/** CPU (% of one core) and resident memory (MB) of one task over its run time, on two axes from 0. */
function jtmUsageChart(el, task, samples, width) {
  var data = [samples.t, samples.cpu, samples.mem_mb];
  var span = function (u) { return (u.scales.x.max || 0) - (u.scales.x.min || 0); };
  // From 0, not from the lowest sample: a flat 49–51 MB task looked like a steep rise.
  var fromZero = function (floor) { return function (u, min, max) { return [0, Math.max(floor, (max || 0) * 1.1)]; }; };
  var opts = {
    title: task.title, width: width || 560, height: 220,
    // The run's span, not uPlot's default: one sample at 0 s drew an axis of 0–90 s beside "run time: 0 s"
    // (adversary 37 F3). From 0 to the run's length when known (a report), else to the last sample (live).
    scales: { x: { time: false, range: function (u, min, max) {
        return [0, Math.max(task.run_s || 0, max || 0, 1)]; } },
      cpu: { range: fromZero(10) }, mem: { range: fromZero(1) } },
    axes: [ { label: 'run time', incrs: JTM_TIME_STEPS, space: 60,
        values: function (u, splits) { return splits.map(function (v) { return jtmDuration(v, span(u)); }); } },
      { scale: 'cpu', label: 'CPU %', stroke: '#2563eb' },
      { scale: 'mem', label: 'memory (MB)', side: 1, stroke: '#b45309', grid: { show: false } } ],
    // Off the chart (no point under the cursor) the legend gives the run's length and each series' largest value, not "--".
    series: [ { label: 'run time', value: function (u, v, s, i) {
        if (i == null) return u.data[0].length ? jtmDuration(u.data[0][u.data[0].length - 1], span(u)) : '';
        return v == null ? '' : jtmDuration(v, span(u)); } },
      { label: 'CPU %', scale: 'cpu', stroke: '#2563eb', width: 2, value: jtmLegendValue },
      { label: 'RSS MB', scale: 'mem', stroke: '#b45309', width: 2, value: jtmLegendValue } ]
  };
  var u = new uPlot(opts, data, el);
  window.jtmCharts.push({ kind: 'usage', task: task.id, points: samples.t.length, chart: u });
  return u;
}
/** Steps of the timeline's clock axis (ms): seconds to weeks, the first that leaves room for a label. */
var JTM_CLOCK_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
  86400, 172800, 604800].map(function (s) { return s * 1000; });
/**
 * Ticks of the timeline's clock axis: round UTC instants every step, at least minGap px apart. Only the first
 * and last instants were labelled: in a 17-minute window nobody could read when anything happened
 * (adversary 37 F6).
 */
function jtmClockTicks(from, to, plot, minGap) {
  var span = Math.max(1, to - from), step = JTM_CLOCK_STEPS[JTM_CLOCK_STEPS.length - 1];
  for (var i = 0; i < JTM_CLOCK_STEPS.length; i++) if (JTM_CLOCK_STEPS[i] / span * plot >= minGap) { step = JTM_CLOCK_STEPS[i]; break; }
  var iso = function (t) { return new Date(t).toISOString(); };
  // hh:mm, with seconds when the step is under a minute, with the date when it is a day or more.
  var label = step >= 86400000 ? function (t) { return iso(t).slice(5, 10); }
    : step < 60000 ? function (t) { return iso(t).slice(11, 19); } : function (t) { return iso(t).slice(11, 16); };
  var ticks = [];
  for (var t = Math.ceil(from / step) * step; t <= to; t += step) ticks.push({ t: t, label: label(t) });
  return ticks;
}
/** One row per worker slot, one bar per task coloured by status; a click opens nothing (static file). */
function jtmTimeline(canvas, tl) {
  var rowH = 14, left = 170, width = canvas.width = Math.max(600, canvas.parentNode.clientWidth || 900);
  var top = tl.rows.length * rowH;
  var height = canvas.height = Math.max(40, top + 34);
  var g = canvas.getContext('2d');
  var span = Math.max(1, tl.to - tl.from), plot = width - left - 10;
  var xOf = function (t) { return left + (t - tl.from) / span * plot; };
  var ticks = jtmClockTicks(tl.from, tl.to, plot, 90);
  // Grid lines first, under the bars.
  g.fillStyle = '#e5e7eb';
  ticks.forEach(function (k) { g.fillRect(Math.round(xOf(k.t)), 0, 1, top + 4); });
  g.font = '11px sans-serif'; g.fillStyle = '#374151';
  tl.rows.forEach(function (name, i) { g.fillText(name.length > 26 ? '…' + name.slice(-25) : name, 2, i * rowH + 11); });
  var drawn = 0;
  tl.bars.forEach(function (b) {
    var x = xOf(b.start);
    var w = Math.max(1, (b.end - b.start) / span * plot);
    g.fillStyle = JTM_COLOURS[b.status_name] || '#000';
    g.fillRect(x, b.row * rowH + 2, w, rowH - 3);
    drawn++;
  });
  g.fillStyle = '#374151';
  g.fillRect(left, top + 4, plot, 1);
  ticks.forEach(function (k) {
    var x = xOf(k.t), w = g.measureText(k.label).width;
    g.fillRect(Math.round(x), top + 4, 1, 4);
    g.fillText(k.label, Math.min(width - w - 2, Math.max(left, x - w / 2)), top + 18);
  });
  // The whole window, with its date, under the ticks (UTC, as every time in the report).
  var whole = function (t) { return new Date(t).toISOString().replace('T', ' ').slice(0, 19); };
  g.fillStyle = '#6b7280';
  g.fillText(whole(tl.from) + ' to ' + whole(tl.to) + ' UTC', left, top + 31);
  window.jtmCharts.push({ kind: 'timeline', points: drawn, ticks: ticks.map(function (k) { return k.label; }) });
}
`;
