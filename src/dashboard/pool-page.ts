import type { Express } from 'express';

import { forPool, type JtmContext } from '../context.js';
import { InvalidInputError } from '../errors.js';
import { getPoolInfo } from '../pools/list-pools.js';
import { RECENT_ENDS_WINDOW_MS } from '../redis/keys.js';
import { readRecords } from '../report/read-tasks.js';
import { openPoolQueue } from '../tasks/pool-queue.js';
import { taskIdOfJob } from '../tasks/job-data.js';
import { CHARTS_JS, jsonScript, uplotAssets } from '../report/browser-charts.js';
import type { TaskRecord } from '../store/task-record.js';
import { validatePoolName } from '../pool-spec.js';
import { esc, isoTime, page, table } from '../http/html.js';

const MINUTE = 60_000;

export interface PoolSeries {
  /** Start of each minute (epoch s, as uPlot's time axis wants). */
  t: number[];
  queued: number[];
  running: number[];
  finished: number[];
  failed: number[];
}

/**
 * The last hour of a pool, minute by minute, from its task records: queued = submitted and not yet started
 * at the minute's end, running = started and not ended, finished / failed = ended within the minute
 * (failed: a status other than success). Records keep the last run only, so a retried task counts once.
 */
export function poolSeries(records: readonly TaskRecord[], now: number): PoolSeries {
  const end = Math.ceil(now / MINUTE) * MINUTE;
  const s: PoolSeries = { t: [], queued: [], running: [], finished: [], failed: [] };
  for (let m = end - 60 * MINUTE; m < end; m += MINUTE) {
    const at = Math.min(now, m + MINUTE);
    let queued = 0;
    let running = 0;
    let finished = 0;
    let failed = 0;
    for (const r of records) {
      const q = r.queued_at ?? 0;
      const st = r.started_at;
      const en = r.ended_at;
      if (q <= at && (st === undefined || st > at) && (en === undefined || en > at)) queued++;
      if (st !== undefined && st <= at && (en === undefined || en > at)) running++;
      if (en !== undefined && en > m && en <= m + MINUTE) {
        if (r.status === 4) finished++;
        else failed++;
      }
    }
    s.t.push(m / 1000);
    s.queued.push(queued);
    s.running.push(running);
    s.finished.push(finished);
    s.failed.push(failed);
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
<p>${esc(pool.kind)} pool · ${pool.live_workers} live workers, ${pool.live_slots} slots · ${pool.waiting + pool.delayed} waiting,
${pool.active} running${pool.created_at ? ` · created ${esc(isoTime(pool.created_at))}` : ''} ·
<a href="/queues/queue/${encodeURIComponent(name)}">queue</a></p>
<h2>Last hour, per minute</h2><div id="chart"></div>
<h2>Slurm allocations</h2>${slurm}
${jsonScript('pool-series', series)}
<script>${js}</script>
<script>${CHARTS_JS}
(function () {
  var s = JSON.parse(document.getElementById('pool-series').textContent);
  var u = new uPlot({ title: 'pool ${esc(name)}', width: 900, height: 280,
    series: [ {}, { label: 'queued', stroke: '#9ca3af', width: 2 }, { label: 'running', stroke: '#2563eb', width: 2 },
      { label: 'finished / min', stroke: '#16a34a', width: 2 }, { label: 'failed / min', stroke: '#dc2626', width: 2 } ] },
    [s.t, s.queued, s.running, s.finished, s.failed], document.getElementById('chart'));
  window.jtmCharts.push({ kind: 'pool', points: s.t.length, chart: u });
})();
</script>`;
    res.type('html').send(page(`Pool ${name}`, body, ''));
  });
}
