import { afterAll, describe, expect, it } from 'vitest';

import { expireIdlePools } from '../../src/manager/expire-pools.js';
import { TaskJobs } from '../../src/manager/task-jobs.js';
import { testEnv } from '../helpers/env.js';
import { queuedTask } from '../helpers/store.js';
import { context, stopTracked } from '../helpers/tracked.js';

afterAll(stopTracked);

describe('idle pool expiry (in process)', () => {
  it('drops a registered pool that never recorded an activity time, and keeps a recent one', async () => {
    const ctx = await context(testEnv({ JTM_POOL_IDLE: '1s' }));
    // A registry entry without last_activity (an old version's entry, or one half-written): idle since always.
    await ctx.redis.sadd(ctx.keys.pools, 'nolast', 'recent', 'worked');
    await ctx.redis.hset(ctx.keys.pool('nolast'), 'name', 'nolast', 'kind', 'manual');
    await ctx.redis.hset(ctx.keys.pool('recent'), 'name', 'recent', 'last_activity', Date.now());
    // Submitted to long ago, but its last task ended just now: not idle (adversary 11 L7).
    await ctx.redis.hset(ctx.keys.pool('worked'), 'name', 'worked', 'last_activity', Date.now() - 3_600_000);
    await ctx.redis.zadd(ctx.keys.poolRecentEnds('worked'), Date.now(), '77');
    const jobs = new TaskJobs(ctx);
    try {
      expect(await expireIdlePools(ctx, jobs, Date.now())).toEqual(['nolast']);
    } finally {
      await jobs.close();
    }
    const { formatPools, listPools } = await import('../../src/pools/list-pools.js');
    const rows = formatPools(await listPools(ctx)).split('\n');
    expect(rows.find(r => r.startsWith('worked'))).toMatch(/ 0s /);
    expect(await ctx.redis.sismember(ctx.keys.pools, 'nolast')).toBe(0);
    expect(await ctx.redis.exists(ctx.keys.pool('nolast'))).toBe(0);
    expect(await ctx.redis.sismember(ctx.keys.pools, 'recent')).toBe(1);
  });
});

// Per-workflow pools (`<pool>_<workflow uuid>`, Cromwell's default `shared: 0`) each left ~30 series in /metrics
// and their fields in the stats hashes for ever after they expired (adversarial test 4: 126 series of 50 expired
// pools). Their counts add up under `<pool>_*`, from the first task.
describe('counts of ended workflows', () => {
  const wf = (n: number): string => `bigmem_${String(n).padStart(8, '0')}-1111-2222-3333-444455556666`;

  it('are counted under <pool>_* from their first task: no series per workflow, and no counter moves when a workflow ends', async () => {
    const ctx = await context(testEnv({ JTM_POOL_IDLE: '1s' }));
    const { newSweepState, sweep } = await import('../../src/manager/sweep.js');
    const { createMetricsRegistry } = await import('../../src/metrics/registry.js');
    // Two workflows' tasks and a named pool's, each run to an end as a worker records it.
    const run = async (pool: string, status: number): Promise<void> => {
      const id = await queuedTask(ctx, { pool });
      await ctx.tasks.start(id, 'w', 'h', 'r', '', 2_000);
      await ctx.tasks.transitionFenced(id, { workerId: 'w', runToken: 'r' }, status, 'x', {}, 5_000);
    };
    await run(wf(1), 4);
    await run(wf(1), -2);
    await run(wf(2), 4);
    await run('named', 4);
    const metrics = async (): Promise<string> => createMetricsRegistry(ctx).metrics();
    // Counted under `<pool>_*` from the first task: folded only when the pool went, each workflow's tasks were
    // counted twice by rate() and increase() summed over pools (adversary 9 J12).
    const totals = (text: string): string[] =>
      text.split('\n').filter(l => /pool="bigmem_\*"/.test(l) && !l.startsWith('#'));
    const before = await metrics();
    expect(before).not.toMatch(/pool="bigmem_0/);
    expect(before).toContain('jtm_tasks_submitted_total{pool="bigmem_*"} 3');
    // Registered and idle: the next sweep expires them.
    for (const p of [wf(1), wf(2), 'named']) {
      await ctx.redis.sadd(ctx.keys.pools, p);
      await ctx.redis.hset(ctx.keys.pool(p), 'name', p, 'last_activity', 1);
    }
    const state = newSweepState(ctx);
    state.sweeps = 5; // not a reconciliation sweep: the expiry alone triggers the folding
    try {
      const report = await sweep(ctx, state, Date.now());
      expect(report.pools_expired.sort()).toEqual([wf(1), wf(2), 'named'].sort());
    } finally {
      await state.jobs.close();
    }
    const after = await metrics();
    expect(after).not.toMatch(/pool="bigmem_0/);
    // The workflows' end moved no counter.
    expect(totals(after)).toEqual(totals(before));
    expect(after).toContain('jtm_tasks_submitted_total{pool="bigmem_*"} 3');
    expect(after).toContain('jtm_tasks_finished_total{pool="bigmem_*",status="success"} 2');
    expect(after).toContain('jtm_tasks_finished_total{pool="bigmem_*",status="failed"} 1');
    expect(after).toContain('jtm_task_duration_seconds_count{pool="bigmem_*"} 3');
    // A named pool keeps its own series.
    expect(after).toContain('jtm_tasks_submitted_total{pool="named"} 1');
    const fields = [
      ...(await ctx.redis.hkeys(ctx.keys.statsSubmitted)),
      ...(await ctx.redis.hkeys(ctx.keys.statsFinished)),
      ...(await ctx.redis.hkeys(ctx.keys.statsDuration)),
      ...(await ctx.redis.hkeys(ctx.keys.statsQueueWait)),
    ];
    expect(fields.filter(f => f.startsWith('bigmem_0'))).toEqual([]);
  });
});
