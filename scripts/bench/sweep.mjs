// Benchmark 6: what the manager's sweep reads, with 1,000 live workers and 10,000 running tasks (simulated
// heartbeats written straight into Redis): the stale-worker range query and listLiveWorkers.
// SLOT: the manager (and its sweep()) is written on another branch. When dist/src/manager/sweep.js exists
// and exports sweep(ctx), it is timed here too; until then its row says so.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { ROOT, jtmModule, openJtm } from './lib/jtm.mjs';
import { median, timeMs } from './lib/stats.mjs';

const WORKERS = 1000;
const TASKS = 10_000;
const STALE = 10;

async function populate(ctx, now) {
  const p = ctx.redis.pipeline();
  for (let w = 0; w < WORKERS; w++) {
    const id = `w${w}`;
    // A few workers stopped beating a while ago: what the sweep has to find.
    const beat = w < STALE ? now - 60_000 : now;
    const running = [];
    for (let t = w * (TASKS / WORKERS); t < (w + 1) * (TASKS / WORKERS); t++) running.push(t + 1);
    p.zadd(ctx.keys.workers, beat, id);
    // A live worker's liveness key, as its heartbeat keeps it; the stale ones have lost theirs.
    if (w >= STALE) p.set(ctx.keys.workerAlive(id), String(beat), 'PX', 600_000);
    p.hset(ctx.keys.worker(id), {
      id,
      pool: `bench${w % 50}`,
      host: 'node1',
      pid: 1000 + w,
      slots: 10,
      running: running.join(','),
      state: 'running',
      started_at: now - 3600_000,
      last_beat: beat,
      slurm_job_id: 0,
    });
    p.sadd(ctx.keys.workerTasks(id), ...running);
    for (const t of running) {
      p.hset(ctx.keys.task(t), {
        id: t,
        status: 3,
        pool: `bench${w % 50}`,
        worker_id: id,
        command: '/bin/true',
        queued_at: now - 1000,
        started_at: now - 500,
      });
      p.zadd(ctx.keys.activeTasks, now - 1000, t);
    }
  }
  await p.exec();
}

export async function run({ quick, redisUrl, log }) {
  const { ctx, close } = await openJtm(redisUrl);
  const { listLiveWorkers } = await jtmModule('pools/live-workers.js');
  const reps = quick ? 15 : 51;
  try {
    const now = Date.now();
    await populate(ctx, now);
    const window = ctx.config.heartbeatIntervalMs * ctx.config.missedBeats;
    const stale = [];
    const live = [];
    for (let i = 0; i < reps; i++) {
      stale.push(await timeMs(() => ctx.redis.zrangebyscore(ctx.keys.workers, '-inf', `(${now - window}`)));
      live.push(await timeMs(() => listLiveWorkers(ctx)));
    }
    const found = await ctx.redis.zrangebyscore(ctx.keys.workers, '-inf', `(${now - window}`);
    if (found.length !== STALE) throw new Error(`stale query found ${found.length}, expected ${STALE}`);
    const rows = [
      {
        id: '6',
        figure: `6. stale-worker query (ZRANGEBYSCORE), ${WORKERS} workers, ${TASKS.toLocaleString('en-US')} running tasks`,
        value: median(stale),
        unit: ' ms',
        target: '< 100 ms, O(stale)',
        pass: median(stale) < 100,
      },
      {
        id: '6',
        figure: `6. listLiveWorkers (index + HGETALL and alive key of each, pipelined), ${WORKERS} workers`,
        value: median(live),
        unit: ' ms',
        target: '< 100 ms',
        pass: median(live) < 100,
        note: 'O(workers) per call',
      },
    ];
    const sweepPath = join(ROOT, 'dist', 'src', 'manager', 'sweep.js');
    if (existsSync(sweepPath)) {
      const mod = await jtmModule('manager/sweep.js');
      if (typeof mod.sweep === 'function') {
        const times = [];
        const state = mod.newSweepState(ctx);
        for (let i = 0; i < reps; i++) times.push(await timeMs(() => mod.sweep(ctx, state)));
        rows.push({
          id: '6',
          figure: `6. manager sweep(), ${WORKERS} workers, ${TASKS.toLocaleString('en-US')} running tasks`,
          value: median(times),
          unit: ' ms',
          target: '< 100 ms',
          pass: median(times) < 100,
        });
      }
    } else {
      rows.push({
        id: '6',
        figure: '6. manager sweep()',
        notMeasured:
          'the manager is on another branch; plug it in at dist/src/manager/sweep.js (export sweep(ctx))',
        target: '< 100 ms',
      });
    }
    log(`  stale query ${median(stale).toFixed(2)} ms, listLiveWorkers ${median(live).toFixed(1)} ms`);
    return rows;
  } finally {
    await close();
  }
}
