import { esc, isoTime, table } from '../http/html.js';
import { counted } from '../plural.js';
import type { HeavyTask, ReportData, Spread } from './analyse.js';
import { CHARTS_JS, jsonScript, STATUS_COLOURS, uplotAssets } from './browser-charts.js';

function secs(s: number | undefined): string {
  if (s === undefined) return '';
  // Under a second in ms: the 30 ms runs of 2,000 `true`s read "0 s" (adversary 37 F6).
  if (s === 0) return '0 s';
  if (s < 0.0005) return '< 1 ms';
  if (s < 1) return `${Math.round(s * 1000)} ms`;
  if (s < 120) return `${Math.round(s * 10) / 10} s`;
  if (s < 7200) return `${Math.round(s / 6) / 10} min`;
  if (s < 2 * 86400) return `${Math.round(s / 360) / 10} h`;
  // Days past two: a 17-day task read "428 h" (adversary 14 F4).
  return `${Math.round(s / 8640) / 10} d`;
}

function spreadCells(s: Spread | null): string[] {
  return s ? [String(s.count), secs(s.mean), secs(s.p50), secs(s.p95), secs(s.max)] : ['0', '', '', '', ''];
}

function pct(x: number | null): string {
  return x === null ? '' : `${Math.round(x * 1000) / 10} %`;
}

function statusCells(by: Partial<Record<string, number>>): string {
  return Object.entries(by)
    .sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0))
    .map(
      ([s, n]) => `<span class="st" style="background:${STATUS_COLOURS[s] ?? '#000'}"></span>${esc(s)} ${n}`,
    )
    .join(' · ');
}

/**
 * A user's string (a call or program name, a pool, a reason) as HTML, escaped and in a `<bdi>`: its direction
 * (a right-to-left override in a command) stays inside it. Without it, the override reversed the report's own
 * "(command)" label beside the name (adversary 21 F4).
 */
function userText(s: string): string {
  return `<bdi>${esc(s)}</bdi>`;
}

function filterText(d: ReportData): string {
  const f = d.filter;
  const parts = [
    f.pool !== undefined ? `pool ${userText(f.pool)}` : '',
    f.workflow !== undefined ? `workflow ${userText(f.workflow)}` : '',
    f.since !== undefined ? `since ${esc(isoTime(f.since))}` : '',
  ].filter(Boolean);
  return parts.length ? parts.join(', ') : 'every task kept in Redis';
}

/** A chart needs two samples at least: one is a dot in a corner, its axis a default span (adversary 37 F3). */
export const MIN_CHART_SAMPLES = 2;

function mb(x: number | null): string {
  if (x === null) return '';
  return x < 0.5 ? '< 1 MB' : `${Math.round(x)} MB`;
}

const WHY: Record<HeavyTask['why'], string> = {
  memory: 'most memory',
  cpu: 'most CPU time',
  running: 'running longest',
};

/** What the section shows of a task: its chart, or why there is none (it ran too briefly for samples). */
function chartCell(h: HeavyTask): string {
  const n = h.samples.t.length;
  if (n >= MIN_CHART_SAMPLES) return `chart below (${n} samples)`;
  const peak = h.peak_rss_mb === null ? 'no peak recorded' : `peak ${mb(h.peak_rss_mb)} from the kernel`;
  return n === 0 ? `too short for a sample (${peak})` : `too short for a chart: 1 sample (${peak})`;
}

function heavyTable(list: readonly HeavyTask[]): string {
  return table(
    ['task', 'call / command', 'status', 'chosen for', 'peak memory', 'CPU time', 'run time', 'chart'],
    list.map(h => [
      String(h.id),
      `<code>${userText(h.group)}</code>`,
      `<span class="status-${esc(h.status_name)}">${esc(h.status_name)}</span>`,
      WHY[h.why],
      h.why === 'running' && h.peak_rss_mb !== null ? `${mb(h.peak_rss_mb)} so far` : mb(h.peak_rss_mb),
      h.cpu_time_s === null ? '' : secs(h.cpu_time_s),
      h.run_s === null ? '' : `${secs(h.run_s)}${h.status_name === 'running' ? ' so far' : ''}`,
      esc(chartCell(h)),
    ]),
    '',
  );
}

/**
 * The tasks that used the most, each listed with its peak and run time, charted when it has samples enough;
 * then, apart, the tasks running longest. Only the charted ones were shown: the two 205 MB tasks that ran out of
 * memory before their first sample were left out without a word, and two flat 2 MB `sleep`s (added as running
 * longest) stood alone under "the tasks that used the most" (adversary 37 F3).
 */
function heavySection(d: ReportData): string {
  if (d.heaviest.length === 0) return '<p class="empty">no resource usage recorded</p>';
  // Ranked by peak memory, then CPU time: the table reads top down.
  const most = d.heaviest
    .filter(h => h.why !== 'running')
    .sort((a, b) => (b.peak_rss_mb ?? 0) - (a.peak_rss_mb ?? 0) || (b.cpu_time_s ?? 0) - (a.cpu_time_s ?? 0));
  const running = d.heaviest.filter(h => h.why === 'running');
  const part = (list: readonly HeavyTask[], id: string): string =>
    `${heavyTable(list)}<div class="charts" id="${id}"></div>`;
  return `<p class="note">By peak memory and CPU time. Samples are taken every JTM_SAMPLE_INTERVAL while a task runs;
a task that ended sooner has none, and its peak is the one the kernel kept for the whole run.</p>
${most.length ? part(most, 'charts') : '<p class="empty">no ended task recorded its usage</p>'}${
    running.length
      ? `
<h3>Running longest</h3>
<p class="note">Added: a running task's record has no figures until it ends; these are its samples so far.</p>
${part(running, 'running-charts')}`
      : ''
  }`;
}

/** One self-contained HTML file: tables rendered here, charts drawn in the browser by uPlot (embedded). */
/** The document's first bytes: written when the output is opened, before the records are read. */
export const HTML_START = '<!doctype html>';

export function reportHtml(d: ReportData): string {
  const { js, css } = uplotAssets();
  const summary = table(
    ['', 'count', 'mean', 'median', 'p95', 'max'],
    [
      ['wall time', ...spreadCells(d.wall_s)],
      ['queue wait', ...spreadCells(d.queue_wait_s)],
    ],
    'no task ran',
  );
  const groups = table(
    [
      'call / command',
      'tasks',
      'statuses',
      'mean wall',
      'CPU efficiency',
      'CPUs',
      'peak RSS',
      'request',
      'suggestion',
    ],
    d.groups.map(g => [
      `<code>${userText(g.name)}</code>${g.kind === 'call' ? '' : ' <small>(command)</small>'}`,
      String(g.tasks),
      statusCells(g.by_status),
      secs(g.wall_s?.mean),
      pct(g.cpu_efficiency),
      `${g.cpus}${g.cpus_assumed ? '?' : ''}`,
      g.peak_rss_mb === null ? '' : `${g.peak_rss_mb} MB`,
      g.mem_request_mb === null ? '' : `${g.mem_request_mb} MB`,
      esc(g.suggestion),
    ]),
    'no tasks',
  );
  const reasons = table(
    ['reason', 'tasks'],
    d.failures.by_reason.map(r => [userText(r.reason), String(r.count)]),
    'no failures',
  );
  const failures = table(
    ['task', 'status', 'exit code', 'pool', 'call / command', 'attempts', 'ended', 'reason'],
    d.failures.latest.map(f => [
      String(f.id),
      `<span class="status-${esc(f.status_name)}">${esc(f.status_name)}</span>`,
      f.exit_code === undefined ? '' : String(f.exit_code),
      userText(f.pool),
      `<code>${userText(f.group)}</code>`,
      String(f.attempts),
      isoTime(f.ended_at),
      userText(f.reason),
    ]),
    'no failures',
  );
  const legend = Object.entries(STATUS_COLOURS)
    .filter(([s]) => d.timeline.bars.some(b => b.status_name === s))
    .map(([s, c]) => `<span class="st" style="background:${c}"></span>${esc(s)}`)
    .join(' ');
  return `${HTML_START}
<html lang="en"><head><meta charset="utf-8"><title>JTM run report</title>
<style>${css}
body{font-family:system-ui,sans-serif;margin:0 1.5rem 2rem;color:#1f2937}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}
th,td{border:1px solid #d1d5db;padding:.3rem .6rem;text-align:left;font-size:.85rem;vertical-align:top}
th{background:#f3f4f6}code{font-size:.85rem;overflow-wrap:anywhere}.empty{color:#6b7280}
.st{display:inline-block;width:.7rem;height:.7rem;border-radius:2px;margin:0 .25rem 0 .4rem;vertical-align:middle}
.status-failed,.status-timeout,.status-lostconnection,.status-terminated,.status-outputerror{color:#b91c1c;font-weight:600}
h3{margin:1rem 0 .3rem}.charts{display:flex;flex-wrap:wrap;gap:1rem}.note{color:#6b7280;font-size:.85rem}
</style></head><body>
<h1>JTM run report</h1>
<p class="note">Generated ${esc(isoTime(d.generated_at))} · ${filterText(d)}</p>
<h2>Tasks</h2>
<p id="statuses">${counted(d.tasks, 'task')}: ${statusCells(d.by_status)}</p>${
    d.never_committed > 0
      ? `\n<p id="never-committed" class="note">Not counted here nor below: ${counted(d.never_committed, 'task')} of submits that never committed (failed "submit did not complete" or "submit failed: …"; Cromwell never got their ids), never run.</p>`
      : ''
  }
<p>Attempts: ${d.attempts.total} in all, ${counted(d.attempts.retried, 'task')} retried, at most ${d.attempts.max} for one task.</p>
${summary}
<h2>Per call or command</h2>
<p class="note">CPU efficiency = CPU time / (wall time × CPUs); CPUs from the pool spec (<code>?</code>: none given, 1 assumed).
Request = the pool's memory per node / workers per node.</p>
${groups}
<h2>Timeline</h2>
<p class="note">One row per worker slot, one bar per task (its last run), coloured by status: ${legend}${
    d.timeline.truncated ? ` · the latest ${d.timeline.bars.length} runs only` : ''
  }</p>
<div><canvas id="timeline"></canvas></div>
<h2>CPU and memory of the tasks that used the most</h2>
${heavySection(d)}
<h2>Failures (${d.failures.count})</h2>
${
  d.failures.count === 0
    ? '<p class="empty">no failures</p>'
    : `${reasons}
${d.failures.count > d.failures.latest.length ? `<p class="note">The latest ${d.failures.latest.length} of ${d.failures.count}:</p>` : ''}
${failures}`
}
${jsonScript('jtm-report', d)}
<script>${js}</script>
<script>${CHARTS_JS}
(function () {
  var d = JSON.parse(document.getElementById('jtm-report').textContent);
  jtmTimeline(document.getElementById('timeline'), d.timeline);
  d.heaviest.forEach(function (h) {
    if (h.samples.t.length < ${MIN_CHART_SAMPLES}) return;
    var box = document.getElementById(h.why === 'running' ? 'running-charts' : 'charts');
    var el = document.createElement('div');
    el.className = 'usage';
    box.appendChild(el);
    // The name isolated (FSI … PDI): its direction stays inside it in the chart's title.
    var title = 'task ' + h.id + ' · \\u2068' + h.group + '\\u2069 · ' + h.status_name +
      (h.peak_rss_mb != null ? ' · peak ' + (h.peak_rss_mb < 0.5 ? '< 1' : h.peak_rss_mb) + ' MB' : '') +
      (h.cpu_time_s != null ? ' · ' + h.cpu_time_s + ' s CPU' : '');
    jtmUsageChart(el, { id: h.id, title: title, run_s: h.run_s }, h.samples);
  });
})();
</script>
</body></html>
`;
}
