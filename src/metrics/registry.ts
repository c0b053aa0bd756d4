import { Counter, Gauge, Registry, type Metric } from 'prom-client';

import { allShards, type JtmContext } from '../context.js';
import { listPools, type PoolInfo } from '../pools/list-pools.js';
import { DURATION_BUCKETS, WAIT_BUCKETS } from '../store/task-counters.js';

type HistogramValue = { metricName: string; labels: Record<string, string | number>; value: number };

/**
 * A histogram whose buckets live in a Redis hash (task-counters.ts): prom-client's Histogram keeps them in
 * process memory, which two managers would each export with their own counts.
 */
function redisHistogram(
  ctx: JtmContext,
  name: string,
  help: string,
  key: (shard: JtmContext) => string,
  bounds: readonly number[],
): Metric {
  return {
    name,
    help,
    type: 'histogram',
    get: async () => {
      const raw = await hgetallShards(ctx, key);
      const pools = new Map<string, { buckets: number[]; sum: number }>();
      for (const [field, v] of Object.entries(raw)) {
        const i = field.lastIndexOf(':');
        const pool = field.slice(0, i);
        const entry = pools.get(pool) ?? { buckets: new Array<number>(bounds.length + 1).fill(0), sum: 0 };
        const what = field.slice(i + 1);
        // The sum in milliseconds (sum_ms, an integer the scripts add to with HINCRBY); `sum`, in seconds, is
        // what a record finished before that change was counted in: both add up.
        if (what === 'sum_ms') entry.sum += Number(v) / 1000;
        else if (what === 'sum') entry.sum += Number(v);
        else entry.buckets[Number(what)] = Number(v);
        pools.set(pool, entry);
      }
      const values: HistogramValue[] = [];
      for (const [pool, { buckets, sum }] of [...pools].sort((a, b) => a[0].localeCompare(b[0]))) {
        let acc = 0;
        bounds.forEach((le, i) => {
          acc += buckets[i] ?? 0;
          values.push({ metricName: `${name}_bucket`, labels: { pool, le }, value: acc });
        });
        acc += buckets[bounds.length] ?? 0;
        values.push({ metricName: `${name}_bucket`, labels: { pool, le: '+Inf' }, value: acc });
        values.push({ metricName: `${name}_sum`, labels: { pool }, value: sum });
        values.push({ metricName: `${name}_count`, labels: { pool }, value: acc });
      }
      return { name, help, type: 'histogram', values, aggregator: 'sum' };
    },
  } as unknown as Metric;
}

/**
 * One stats hash of every shard, merged (docs/scaling.md): its fields start with a pool name, and a pool lives
 * on one shard, but the label of ended workflows (`<pool>_*`) is on every shard that had one: summed.
 */
async function hgetallShards(
  ctx: JtmContext,
  key: (shard: JtmContext) => string,
): Promise<Record<string, string>> {
  const all = await Promise.all(allShards(ctx).map(s => s.redis.hgetall(key(s))));
  const merged: Record<string, string> = {};
  for (const hash of all) {
    for (const [field, v] of Object.entries(hash)) {
      const before = merged[field];
      merged[field] = before === undefined ? v : String(Number(before) + Number(v));
    }
  }
  return merged;
}

/** `<pool>:<status>` → count, from a stats hash. */
function byPoolAndStatus(raw: Record<string, string>): { pool: string; status: string; n: number }[] {
  return Object.entries(raw).map(([field, v]) => {
    const i = field.lastIndexOf(':');
    return { pool: field.slice(0, i), status: field.slice(i + 1), n: Number(v) };
  });
}

/**
 * The Prometheus metrics of a JTM deployment, read from Redis at each scrape: the same numbers from every
 * manager and dashboard that serves them (counters and histograms are kept in Redis, not in memory).
 */
export function createMetricsRegistry(ctx: JtmContext): Registry {
  const registry = new Registry();
  // One read of the pools per scrape, shared by the gauges that come from it (the numbers of `jtm pools`).
  let poolsAt = 0;
  let pools: Promise<PoolInfo[]> | undefined;
  const currentPools = (): Promise<PoolInfo[]> => {
    if (!pools || Date.now() - poolsAt > 1000) {
      poolsAt = Date.now();
      pools = listPools(ctx);
    }
    return pools;
  };
  const fromPools = (name: string, help: string, value: (p: PoolInfo) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['pool'],
      registers: [registry],
      async collect() {
        this.reset();
        for (const p of await currentPools()) this.set({ pool: p.name }, value(p));
      },
    });
  };

  new Counter({
    name: 'jtm_tasks_submitted_total',
    help: 'Tasks submitted, by pool.',
    labelNames: ['pool'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const [pool, n] of Object.entries(await hgetallShards(ctx, s => s.keys.statsSubmitted)))
        this.inc({ pool }, Number(n));
    },
  });
  new Counter({
    name: 'jtm_tasks_finished_total',
    help: 'Tasks that reached a final status, by pool and status.',
    labelNames: ['pool', 'status'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const { pool, status, n } of byPoolAndStatus(await hgetallShards(ctx, s => s.keys.statsFinished)))
        this.inc({ pool, status }, n);
    },
  });
  fromPools(
    'jtm_tasks_queued',
    'Tasks waiting in the pool queue (waiting + delayed, as jtm pools).',
    p => p.waiting + p.delayed,
  );
  fromPools('jtm_tasks_running', 'Tasks being run (active jobs of the pool queue).', p => p.active);
  fromPools(
    'jtm_workers',
    'Live workers taking tasks (heartbeat within the missed-beats window), not draining, paused or stopping.',
    p => p.live_workers,
  );
  fromPools('jtm_worker_slots', 'Slots of the live workers taking tasks.', p => p.live_slots);
  fromPools(
    'jtm_workers_draining',
    'Live workers draining before their end: they take only tasks that fit in the time they have left.',
    p => p.draining_workers,
  );
  fromPools(
    'jtm_workers_paused',
    "Live workers taking no task for now: their log dir's disk is full, or the node's memory is below JTM_MEM_AVAILABLE_MARGIN.",
    p => p.paused_workers,
  );
  new Gauge({
    name: 'jtm_slurm_allocations',
    help: 'Slurm allocations of dynamic pools, by state (as recorded by the manager).',
    labelNames: ['pool', 'state'],
    registers: [registry],
    async collect() {
      this.reset();
      for (const p of await currentPools()) {
        for (const j of p.slurm_jobs)
          this.inc({ pool: p.name, state: String(j.state ?? 'unknown').toLowerCase() });
      }
    },
  });
  registry.registerMetric(
    redisHistogram(
      ctx,
      'jtm_task_duration_seconds',
      'Run time of finished tasks (last run).',
      s => s.keys.statsDuration,
      DURATION_BUCKETS,
    ),
  );
  registry.registerMetric(
    redisHistogram(
      ctx,
      'jtm_task_queue_wait_seconds',
      'Time from submission to start of finished tasks.',
      s => s.keys.statsQueueWait,
      WAIT_BUCKETS,
    ),
  );
  new Gauge({
    name: 'jtm_manager_sweep_duration_seconds',
    help: 'Duration of the last manager sweep (the longest of the shards).',
    registers: [registry],
    async collect() {
      const each = await Promise.all(
        allShards(ctx).map(s => s.redis.hget(s.keys.managerStats, 'last_sweep_ms')),
      );
      const ms = each.filter(v => v !== null).map(Number);
      this.reset();
      if (ms.length > 0) this.set(Math.max(...ms) / 1000);
    },
  });
  new Counter({
    name: 'jtm_manager_sweeps_total',
    help: 'Manager sweeps (all managers).',
    registers: [registry],
    async collect() {
      this.reset();
      const each = await Promise.all(allShards(ctx).map(s => s.redis.hget(s.keys.managerStats, 'sweeps')));
      this.inc(each.reduce((n, v) => n + Number(v ?? 0), 0));
    },
  });
  new Gauge({
    name: 'jtm_redis_roundtrip_seconds',
    help: 'Time of one PING to Redis from this process, at scrape time.',
    registers: [registry],
    async collect() {
      const t0 = process.hrtime.bigint();
      await ctx.redis.ping();
      this.set(Number(process.hrtime.bigint() - t0) / 1e9);
    },
  });
  return registry;
}
