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
/** CPU (% of one core) and resident memory (MB) of one task over its run time (s), on two axes. */
function jtmUsageChart(el, task, samples, width) {
  var data = [samples.t, samples.cpu, samples.mem_mb];
  var opts = {
    title: task.title, width: width || 560, height: 220,
    scales: { x: { time: false }, cpu: {}, mem: {} },
    axes: [ { label: 'run time (s)' },
      { scale: 'cpu', label: 'CPU %', stroke: '#2563eb' },
      { scale: 'mem', label: 'memory (MB)', side: 1, stroke: '#b45309', grid: { show: false } } ],
    series: [ {}, { label: 'CPU %', scale: 'cpu', stroke: '#2563eb', width: 2 },
      { label: 'RSS MB', scale: 'mem', stroke: '#b45309', width: 2 } ]
  };
  var u = new uPlot(opts, data, el);
  window.jtmCharts.push({ kind: 'usage', task: task.id, points: samples.t.length, chart: u });
  return u;
}
/** One row per worker slot, one bar per task coloured by status; a click opens nothing (static file). */
function jtmTimeline(canvas, tl) {
  var rowH = 14, left = 170, width = canvas.width = Math.max(600, canvas.parentNode.clientWidth || 900);
  var height = canvas.height = Math.max(40, tl.rows.length * rowH + 24);
  var g = canvas.getContext('2d');
  var span = Math.max(1, tl.to - tl.from), plot = width - left - 10;
  g.font = '11px sans-serif'; g.fillStyle = '#374151';
  tl.rows.forEach(function (name, i) { g.fillText(name.length > 26 ? '…' + name.slice(-25) : name, 2, i * rowH + 11); });
  var drawn = 0;
  tl.bars.forEach(function (b) {
    var x = left + (b.start - tl.from) / span * plot;
    var w = Math.max(1, (b.end - b.start) / span * plot);
    g.fillStyle = JTM_COLOURS[b.status_name] || '#000';
    g.fillRect(x, b.row * rowH + 2, w, rowH - 3);
    drawn++;
  });
  g.fillStyle = '#374151';
  g.fillText(new Date(tl.from).toISOString().replace('T', ' ').slice(0, 19) + 'Z', left, height - 6);
  var end = new Date(tl.to).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
  g.fillText(end, width - 10 - g.measureText(end).width, height - 6);
  window.jtmCharts.push({ kind: 'timeline', points: drawn });
}
`;
