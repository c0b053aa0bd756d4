// addTaskJobs (src/tasks/submit-jobs.ts) adds task jobs below BullMQ's addBulk (no Job objects, one pipeline
// for every pool): what it writes must be what addBulk writes, so BullMQ's worker, its getters and
// bull-board read the jobs the same. The reference is addBulk itself, on another pool of the same context:
// a BullMQ upgrade that changes the job format fails here rather than in production.
import { describe } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { TASK_JOB_NAME, jobIdOf, taskJobOptions } from '../../src/tasks/job-data.js';
import { openPoolQueue } from '../../src/tasks/pool-queue.js';
import { addTaskJobs } from '../../src/tasks/submit-jobs.js';
import { it } from '../helpers/store.js';

/** Everything Redis holds for `pool`'s queue, its own name and times taken out so two pools compare. */
async function queueState(ctx: JtmContext, pool: string): Promise<unknown> {
  const q = openPoolQueue(ctx, pool);
  const name = ctx.keys.poolQueue(pool);
  const prefix = `${ctx.keys.queuePrefix}:${name}:`;
  const keys = (await ctx.redis.keys(`${prefix}*`)).sort();
  const state: Record<string, unknown> = {};
  for (const key of keys) {
    const type = await ctx.redis.type(key);
    const short = key.slice(prefix.length);
    if (type === 'hash') {
      const h = await ctx.redis.hgetall(key);
      if ('timestamp' in h) h.timestamp = 'T';
      state[short] = h;
    } else if (type === 'list') state[short] = await ctx.redis.lrange(key, 0, -1);
    else if (type === 'stream')
      state[short] = (await ctx.redis.xrange(key, '-', '+')).map(([, fields]) => fields);
    else state[short] = type;
  }
  await q.close();
  return JSON.parse(JSON.stringify(state).replaceAll(name, 'QUEUE'));
}

describe.concurrent('addTaskJobs', () => {
  it('writes the jobs, queue lists and events that Queue.addBulk writes', async ({ ctx, expect }) => {
    const ids = [5, 6, 7, 12];
    const ours = openPoolQueue(ctx, 'ours');
    await addTaskJobs(ctx.redis, ids, () => ours);
    await ours.close();
    const theirs = openPoolQueue(ctx, 'theirs');
    await theirs.addBulk(ids.map(id => ({ name: TASK_JOB_NAME, data: { id }, opts: taskJobOptions(id) })));
    await theirs.close();
    const state = await queueState(ctx, 'ours');
    expect(state).toEqual(await queueState(ctx, 'theirs'));
    // Not vacuous: the jobs and the wait list are there (newest first, as BullMQ's LPUSH keeps them).
    expect(state).toMatchObject({ wait: ids.map(jobIdOf).reverse(), [jobIdOf(5)]: { data: '{"id":5}' } });
  });

  it('one batch over several pools: each pool gets its tasks, in task order; a repeated task is a no-op', async ({
    ctx,
    expect,
  }) => {
    const a = openPoolQueue(ctx, 'a');
    const b = openPoolQueue(ctx, 'b');
    // 250 tasks: b's 166 jobs take two script runs.
    const ids = Array.from({ length: 250 }, (_, i) => i + 1);
    await addTaskJobs(ctx.redis, ids, i => (i % 3 === 0 ? a : b));
    await addTaskJobs(ctx.redis, [1], () => a);
    const waiting = async (q: typeof a): Promise<number[]> =>
      (await q.getJobs(['wait'], 0, -1, true)).map(j => j.data.id);
    expect(await waiting(a)).toEqual(ids.filter((_, i) => i % 3 === 0));
    expect(await waiting(b)).toEqual(ids.filter((_, i) => i % 3 !== 0));
    await Promise.all([a.close(), b.close()]);
  });
});
