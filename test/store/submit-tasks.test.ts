// submitTasks (src/tasks/submit-task.ts) over several record chunks and job batches, in-process, one fresh
// prefix per test: each chunk's jobs are added while later chunks' records are still being written, so
// these check what that overlap must keep: job order within a pool, ids in input order, all or nothing.
import { tmpdir } from 'node:os';

import { describe } from 'vitest';

import { SubmitIncompleteError } from '../../src/errors.js';
import { getPool, listPoolNames, touchPool } from '../../src/pools/pool-registry.js';
import { jobIdOf } from '../../src/tasks/job-data.js';
import { openPoolQueue } from '../../src/tasks/pool-queue.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { submitTasks } from '../../src/tasks/submit-task.js';
import { buildTask, type NewTask } from '../../src/tasks/task-spec.js';
import { it } from '../helpers/store.js';

/** `n` tasks, pool `a` for every third one and `b` for the others. */
function tasks(n: number): NewTask[] {
  return Array.from({ length: n }, (_, i) =>
    buildTask(
      { command: `echo ${i}` },
      { pool: i % 3 === 0 ? 'a' : 'b', cwd: tmpdir(), maxCommandBytes: 65_536 },
    ),
  );
}

describe.concurrent('submitTasks over many chunks', () => {
  it('ids in input order; each pool gets its jobs in task order; all committed and pending', async ({
    ctx,
    expect,
  }) => {
    const input = tasks(2_600);
    const ids = await submitTasks(ctx, input);
    expect(ids).toEqual(Array.from({ length: 2_600 }, (_, i) => i + 1));
    for (const pool of ['a', 'b']) {
      const q = openPoolQueue(ctx, pool);
      // Oldest first: the order in which the pool's workers will take them.
      const waiting = await q.getJobs(['wait'], 0, -1, true);
      await q.close();
      const expected = ids.filter((_, i) => input[i]!.pool === pool);
      expect(waiting.map(j => j.data.id)).toEqual(expected);
      expect(waiting.map(j => j.id)).toEqual(expected.map(jobIdOf));
    }
    const records = await Promise.all([1, 1_000, 1_001, 2_600].map(id => ctx.tasks.get(id)));
    expect(records.map(r => [r?.command, r?.status])).toEqual([
      ['echo 0', TaskStatus.pending],
      ['echo 999', TaskStatus.pending],
      ['echo 1000', TaskStatus.pending],
      ['echo 2599', TaskStatus.pending],
    ]);
    const submitId = records[0]!.submit_id!;
    expect(await ctx.redis.get(ctx.keys.submit(submitId))).toBe('2600');
    // Both pools registered (one transaction for the submit's pools).
    expect(await listPoolNames(ctx)).toEqual(['a', 'b']);
    expect(await getPool(ctx, 'b')).toMatchObject({ name: 'b', kind: 'manual' });
  });

  it('a chunk that fails after earlier chunks have their jobs: no commit, the created records failed', async ({
    ctx,
    expect,
  }) => {
    // Task 2,600's record key already holds a string: the create script of its chunk (2,501–2,750) fails
    // when it reaches it, after the jobs of tasks 1–2,000 have been added (batches of 1,000).
    await ctx.redis.set(ctx.keys.task(2_600), 'in the way');
    const err = await submitTasks(ctx, tasks(3_000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SubmitIncompleteError);
    expect(await ctx.redis.keys(`${ctx.keys.submitBase}*`)).toEqual([]);
    // The first batches' jobs were queued before the failure showed: a worker skips them (record failed).
    expect(await ctx.redis.exists(ctx.keys.poolJob('a', jobIdOf(1)))).toBe(1);
    for (const id of [1, 1_000, 2_000, 2_500, 2_751, 3_000]) {
      expect(await ctx.tasks.get(id)).toMatchObject({ status: TaskStatus.failed });
    }
    // None pending: nothing of the submit may run.
    const statuses = await Promise.all(
      Array.from({ length: 3_000 }, (_, i) => i + 1)
        .filter(id => id < 2_501 || id > 2_750)
        .map(id => ctx.tasks.status(id)),
    );
    expect(new Set(statuses)).toEqual(new Set([TaskStatus.failed]));
  });

  it('a shared dynamic pool keeps the longest time and the most memory and CPUs of its submits', async ({
    ctx,
    expect,
  }) => {
    // Adversary 7 H8: the latest spec won, so a later, shorter call shrank the allocations under a waiting
    // longer one, which then never ran (pending, isalive yes, an allocation booked every idle timeout).
    const spec = (time: string, mem: string, cpu: number, account: string) => ({
      name: 'sharedp',
      cluster: 'test',
      time,
      mem,
      cpu,
      account,
    });
    await touchPool(ctx, 'sharedp', spec('01:00:00', '2G', 1, 'a1'));
    await touchPool(ctx, 'sharedp', spec('00:02:00', '4608M', 1, 'a2'));
    await touchPool(ctx, 'sharedp', spec('00:05:00', '1G', 4, 'a3'));
    expect((await getPool(ctx, 'sharedp'))?.spec).toEqual(spec('01:00:00', '4608M', 4, 'a3'));
    expect((await getPool(ctx, 'sharedp'))?.kind).toBe('dynamic');
  });
});
