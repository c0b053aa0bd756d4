// Jobs that BullMQ will never deliver: their hashes survive, but they are in none of their queue's lists (a `wait`
// list lost to eviction or a DEL). Their tasks stayed pending, isalive yes, for good (adversary 24 F3).
import { afterAll, describe, expect, it } from 'vitest';

import {
  emptyReconcileCounts,
  findStrandedJobs,
  reconcileBatch,
  type ReconcileCounts,
} from '../../src/manager/reconcile.js';
import { TaskJobs } from '../../src/manager/task-jobs.js';
import type { JtmContext } from '../../src/context.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { runJtm, taskIds } from '../helpers/cli.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { context, start, stopTracked } from '../helpers/tracked.js';

afterAll(stopTracked);

/** One whole reconciliation pass as the sweep runs it, at `now`, with its look for stranded jobs at the end. */
async function pass(ctx: JtmContext, now: number): Promise<ReconcileCounts> {
  const counts = emptyReconcileCounts();
  const jobs = new TaskJobs(ctx);
  const pending = new Map<string, number[]>();
  try {
    for (let cursor: number | undefined = 0; cursor !== undefined;)
      cursor = await reconcileBatch(ctx, jobs, cursor, counts, now, pending);
    for (const [pool, ids] of pending) await findStrandedJobs(ctx, jobs, pool, ids, counts);
  } finally {
    await jobs.close();
  }
  return counts;
}

describe('stranded jobs', () => {
  it("pending tasks whose jobs are in none of the queue's lists are re-queued and run; jobs that wait are left alone", async () => {
    const env = testEnv();
    const ctx = await context(env);
    const ids: number[] = [];
    for (const word of ['one', 'two', 'three']) {
      const r = await runJtm(['submit', '-cmd', `echo ${word}`, '-p', 'stranded'], env);
      expect(r.code, r.stderr).toBe(0);
      ids.push(...taskIds(r.stdout));
    }
    const later = Date.now() + 10 * 60_000;
    // Healthy: three jobs waiting, nothing to do.
    expect((await pass(ctx, later)).readded).toBe(0);
    expect(await ctx.redis.llen(ctx.keys.poolQueueKey('stranded', 'wait'))).toBe(3);
    // The list lost, the job hashes kept.
    await ctx.redis.del(ctx.keys.poolQueueKey('stranded', 'wait'));
    // Not before the tasks have waited a while (a submit's own jobs are never looked at).
    expect((await pass(ctx, Date.now())).readded).toBe(0);
    expect((await pass(ctx, later)).readded).toBe(3);
    start(['worker', '-p', 'stranded'], env);
    for (const id of ids) {
      await waitFor(
        async () => (await ctx.tasks.status(id)) === TaskStatus.success,
        `task ${id} to run`,
        30_000,
      );
    }
  });
});
