import type { Express } from 'express';

import { forPool, type JtmContext } from '../context.js';
import { InvalidInputError } from '../errors.js';
import { getPoolInfo, slurmErrorText } from '../pools/list-pools.js';
import { RECENT_ENDS_WINDOW_MS } from '../redis/keys.js';
import { refuseReplica } from '../redis/replica-check.js';
import { readRecords } from '../report/read-tasks.js';
import type { ReportRecord } from '../report/analyse.js';
import { TaskStatus } from '../tasks/status.js';
import { openPoolQueue } from '../tasks/pool-queue.js';
import { taskIdOfJob } from '../tasks/job-data.js';
import { CHARTS_JS, jsonScript, uplotAssets } from '../report/browser-charts.js';
import { validatePoolName } from '../pool-spec.js';
import { esc, isoTime, page, table } from '../http/html.js';
import { counted } from '../plural.js';

const MINUTE = 60_000;

export interface PoolSeries {
  /** Start of each minute (epoch s, as uPlot's time axis wants). */
  t: number[];
  queued: number[];
  running: number[];
  finished: number[];
  failed: number[];
}

/** A change of the pool's counts at a time: of the tasks waiting and of the tasks running. */
type Change = [at: number, queued: number, running: number];

/**
 * The last hour of a pool, minute by minute, from its task records: queued and running = the most tasks that
 * waited (since their submission or their last return to the queue, until their latest start) and ran
 * (started, not ended) at once at any time within the minute;
 * finished / failed = ended within the minute (failed: a status other than success). Records keep the last run
 * only, so a retried task counts once. (Sampled at the minute's end, a busy minute of tasks of a few seconds
 * showed 0 queued and 0 running: adversary 5 G9.)
 */
export function poolSeries(records: readonly ReportRecord[], now: number): PoolSeries {
  const end = Math.ceil(now / MINUTE) * MINUTE;
  const from = end - 60 * MINUTE;
  const s: PoolSeries = { t: [], queued: [], running: [], finished: [], failed: [] };
  // Changes of the two counts, swept in time order.
  const changes: Change[] = [];
  const ended = { finished: new Map<number, number>(), failed: new Map<number, number>() };
  for (const r of records) {
    // A task given back after a run waits again: that run (its started_at) lasted until its return.
    const waiting = r.status === TaskStatus.queued || r.status === TaskStatus.pending;
    const back = waiting ? r.waiting_since : undefined;
    if (back !== undefined && r.started_at !== undefined && r.started_at < back) {
      const q0 = r.queued_at ?? r.started_at;
      if (q0 < r.started_at) changes.push([q0, 1, 0], [r.started_at, -1, 0]);
      changes.push([r.started_at, 0, 1], [back, 0, -1]);
    }
    const q = r.waiting_since ?? r.queued_at ?? 0;
    const st = waiting ? undefined : r.started_at;
    const en = r.ended_at;
    const waitEnd = Math.min(st ?? Infinity, en ?? Infinity);
    if (q < waitEnd) changes.push([q, 1, 0], [waitEnd, -1, 0]);
    if (st !== undefined && (en === undefined || st < en)) changes.push([st, 0, 1], [en ?? Infinity, 0, -1]);
    if (en !== undefined && en > from && en <= end) {
      const minute = from + (Math.ceil((en - from) / MINUTE) - 1) * MINUTE;
      const into = r.status === 4 ? ended.finished : ended.failed;
      into.set(minute, (into.get(minute) ?? 0) + 1);
    }
  }
  // Ends before starts at the same instant: a slot handed from one task to the next is not two at once.
  changes.sort((a, b) => a[0] - b[0] || a[1] + a[2] - (b[1] + b[2]));
  let queued = 0;
  let running = 0;
  let i = 0;
  const at = (k: number): number => changes[k]?.[0] ?? Infinity;
  const step = (): void => {
    const [, dq, dr] = changes[i++] ?? [0, 0, 0];
    queued += dq;
    running += dr;
  };
  for (let m = from; m < end; m += MINUTE) {
    const close = Math.min(now, m + MINUTE);
    // The counts as the minute begins, then their highest within it.
    while (at(i) <= m) step();
    let maxQueued = queued;
    let maxRunning = running;
    while (at(i) < close) {
      step();
      maxQueued = Math.max(maxQueued, queued);
      maxRunning = Math.max(maxRunning, running);
    }
    s.t.push(m / 1000);
    s.queued.push(maxQueued);
    s.running.push(maxRunning);
    s.finished.push(ended.finished.get(m) ?? 0);
    s.failed.push(ended.failed.get(m) ?? 0);
  }
  return s;
}

/**
 * The ids of the tasks the last hour of a pool is drawn from, read in proportion to the pool (it scanned every
 * task record of Redis: 70,000 records made one view 5 s and 71,000 commands): the jobs its queue holds
 * (waiting, delayed, prioritized or running: the tasks that have not ended) and the tasks that ended
 * within the hour (the pool's recent-ends index, written by each end).
 */
export async function poolTaskIds(ctx: JtmContext, pool: string, now: number): Promise<number[]> {
  const queue = openPoolQueue(ctx, pool);
  try {
    const [jobIds, ended] = await Promise.all([
      queue.getRanges(['waiting', 'prioritized', 'delayed', 'active'], 0, -1, true),
      ctx.redis.zrangebyscore(ctx.keys.poolRecentEnds(pool), now - RECENT_ENDS_WINDOW_MS, '+inf'),
    ]);
    const ids = new Set<number>(ended.map(Number));
    for (const j of jobIds) {
      const id = taskIdOfJob(j);
      if (id !== undefined) ids.add(id);
    }
    return [...ids].sort((a, b) => a - b);
  } finally {
    await queue.close();
  }
}

/** `/pool?name=P`: queue depth, running and finished tasks per minute over the last hour; Slurm allocations. */
export function registerPoolPage(app: Express, ctx: JtmContext): void {
  app.get('/pool', async (req, res) => {
    const given = req.query['name'];
    // `?name=a&name=b` is an array: say so, rather than judge it as the empty name nobody sent.
    if (given !== undefined && typeof given !== 'string')
      throw new InvalidInputError('the pool name is given more than once');
    const name = validatePoolName(given ?? '');
    // This pool's row only: the page of one pool reads nothing of the others.
    const pool = await getPoolInfo(ctx, name);
    if (!pool) {
      await refuseReplica(forPool(ctx, name));
      res
        .status(404)
        .type('html')
        .send(page(`Pool ${name}`, `<p class="empty">No pool ${esc(name)}.</p>`, ''));
      return;
    }
    const now = Date.now();
    const shard = forPool(ctx, name);
    const records = (await readRecords(shard, await poolTaskIds(shard, name, now))).filter(
      r => r.pool === name && (r.ended_at === undefined || r.ended_at > now - 60 * MINUTE),
    );
    const series = poolSeries(records, now);
    const { js, css } = uplotAssets();
    const slurm = table(
      ['Slurm job', 'State', 'Slots', 'Details'],
      pool.slurm_jobs.map(j => {
        const { id, state, slots, ...rest } = j;
        return [esc(id), esc(state ?? ''), esc(slots ?? ''), `<code>${esc(JSON.stringify(rest))}</code>`];
      }),
      'No Slurm allocation.',
    );
    const body = `<style>${css}</style>
<p>${esc(pool.kind)} pool · ${counted(pool.live_workers, 'live worker')}, ${counted(pool.live_slots, 'slot')}${pool.draining_workers > 0 ? ` (+${pool.draining_workers} draining, ${counted(pool.draining_slots, 'slot')})` : ''}${pool.paused_workers > 0 ? ` (+${pool.paused_workers} paused: ${esc(pool.paused.join(', '))}, ${counted(pool.paused_slots, 'slot')})` : ''} · ${pool.waiting + pool.delayed} waiting,
${pool.active} running${pool.created_at ? ` · created ${esc(isoTime(pool.created_at))}` : ''} ·
<a href="/queues/queue/${encodeURIComponent(name)}">queue</a></p>
<h2>Last hour, per minute</h2><div id="chart"></div>
<p class="note">Queued and running: the most at once within the minute. Succeeded / min: tasks that ended with
success; failed / min: tasks that ended with any other status (failed, timeout, out of resource, terminated, lost
connection…). Off the chart, the legend gives the latest minute.</p>
<h2>Slurm allocations</h2>${pool.slurm_error ? `<p class="error">${esc(slurmErrorText(pool.slurm_error, now))}</p>` : ''}${slurm}
${jsonScript('pool-series', series)}
<script>${js}</script>
<script>${CHARTS_JS}
(function () {
  var s = JSON.parse(document.getElementById('pool-series').textContent);
  // Off the chart the legend gives the latest minute's values, not "--" for every series (adversary 37 F7).
  var line = function (label, stroke) { return { label: label, stroke: stroke, width: 2, value: jtmLatestValue }; };
  var u = new uPlot({ title: 'pool ${esc(name)}', width: 900, height: 280,
    series: [ { label: 'minute', value: jtmLatestMinute }, line('queued', '#9ca3af'), line('running', '#2563eb'),
      line('succeeded / min', '#16a34a'), line('failed / min', '#dc2626') ] },
    [s.t, s.queued, s.running, s.finished, s.failed], document.getElementById('chart'));
  window.jtmCharts.push({ kind: 'pool', points: s.t.length, chart: u });
})();
</script>`;
    res.type('html').send(page(`Pool ${name}`, body, ''));
  });
}
