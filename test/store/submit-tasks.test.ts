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
    // Task 2,600 alone is of pool `c`, whose submitted counter holds text: the create script of its chunk
    // (2,501–2,750) fails at its end, after the jobs of tasks 1–2,000 have been added (batches of 1,000). (A
    // record key in the way no longer fails it: that id is taken and the chunk goes past it.)
    await ctx.redis.hset(ctx.keys.statsSubmitted, 'c', 'not a count');
    const input = tasks(3_000);
    input[2_599] = { ...input[2_599]!, pool: 'c' };
    const err = await submitTasks(ctx, input).catch((e: unknown) => e);
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

  it('the id counter lost alone while records are kept: no id in use is handed out again, no record overwritten', async ({
    ctx,
    expect,
  }) => {
    // Adversary 24 F7: with the counter deleted (or evicted), the next submit got id 1 again: its create script
    // overwrote the kept record of the old task 1 (which showed the old ended_at), and its job collided with the
    // old job task-1 (BullMQ's add a no-op: it waited for reconciliation).
    const old = await submitTasks(ctx, tasks(3));
    expect(old).toEqual([1, 2, 3]);
    await ctx.tasks.transitionMany([1], [TaskStatus.pending], TaskStatus.success, 'done', 5_000);
    const before = await ctx.redis.hgetall(ctx.keys.task(1));
    await ctx.redis.del(ctx.keys.nextTaskId);
    const ids = await submitTasks(ctx, tasks(2));
    expect(ids.filter(id => id <= 3)).toEqual([]);
    expect(ids[1]).toBe(ids[0]! + 1);
    expect(await ctx.redis.hgetall(ctx.keys.task(1))).toEqual(before);
    for (const [i, id] of ids.entries()) {
      const r = await ctx.tasks.get(id);
      expect([r?.command, r?.status, r?.ended_at]).toEqual([`echo ${i}`, TaskStatus.pending, undefined]);
      expect(await ctx.redis.exists(ctx.keys.poolJob(r!.pool, jobIdOf(id)))).toBe(1);
    }
    expect(Number(await ctx.redis.get(ctx.keys.nextTaskId))).toBe(ids[1]);
    // Both new jobs wait in their pools (a reused id's job was a no-op add: it did not).
    const waiting = await Promise.all(
      ['a', 'b'].map(async pool => {
        const q = openPoolQueue(ctx, pool);
        const jobs = await q.getJobs(['wait'], 0, -1, true);
        await q.close();
        return jobs.map(j => j.data.id);
      }),
    );
    expect(
      waiting
        .flat()
        .filter(id => ids.includes(id))
        .sort(),
    ).toEqual([...ids].sort());
  });

  it("an id whose record is gone but whose job is still in its pool's queue is not handed out again", async ({
    ctx,
    expect,
  }) => {
    // The record expired (its retention) or was evicted while BullMQ keeps the job (its last finished jobs):
    // a task given that id again in that pool would have its job add be a no-op.
    expect(await submitTasks(ctx, tasks(1))).toEqual([1]);
    await ctx.redis.del(ctx.keys.task(1), ctx.keys.nextTaskId);
    const [id] = await submitTasks(ctx, tasks(1));
    expect(id).not.toBe(1);
    expect(await ctx.redis.exists(ctx.keys.task(1))).toBe(0);
    expect(await ctx.redis.exists(ctx.keys.poolJob('a', jobIdOf(id!)))).toBe(1);
    // Another pool's job of the same id is no collision: BullMQ job ids are per queue.
    await ctx.redis.del(ctx.keys.task(id!), ctx.keys.nextTaskId);
    await ctx.redis.set(ctx.keys.nextTaskId, id! - 1);
    const [again] = await submitTasks(ctx, [{ ...tasks(1)[0]!, pool: 'b' }]);
    expect(again).toBe(id);
  });

  it('ids kept far apart (earlier raises): each hit raises the counter further, every chunk is written once', async ({
    ctx,
    expect,
  }) => {
    // Records kept at 1 and 1,000,005 (a counter raised by a manager before it was lost): the first raise lands
    // among them, the second past them. 600 tasks: three chunks, each finding the ids taken.
    for (const id of [1, 1_000_005]) await ctx.redis.hset(ctx.keys.task(id), 'id', id, 'command', 'kept');
    const ids = await submitTasks(ctx, tasks(600));
    expect(new Set(ids).size).toBe(600);
    expect(ids.filter(id => id <= 1_000_005)).toEqual([]);
    for (const id of [1, 1_000_005]) expect(await ctx.redis.hget(ctx.keys.task(id), 'command')).toBe('kept');
    const records = await Promise.all(ids.map(id => ctx.tasks.get(id)));
    expect(records.map(r => r?.command)).toEqual(ids.map((_, i) => `echo ${i}`));
    expect(new Set(records.map(r => r?.status))).toEqual(new Set([TaskStatus.pending]));
    // The active index holds the submit's tasks once each (no chunk written twice).
    expect(await ctx.redis.zcard(ctx.keys.activeTasks)).toBe(600);
    expect(Number(await ctx.redis.hget(ctx.keys.statsSubmitted, 'b'))).toBe(400);
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

  it("one submit's tasks of different sizes in one pool: the pool keeps the most of them all, not the last one's", async ({
    ctx,
    expect,
  }) => {
    // Found with adversary 25 F2: only the pool's last task of a submit was merged, so a task file whose larger
    // call came first got allocations booked for the smaller one.
    const call = (time: string, mem: string, cpu: number, account: string) =>
      buildTask(
        { command: 'true', pool: { name: 'bulkp', cluster: 'test', time, mem, cpu, account } },
        { cwd: tmpdir(), maxCommandBytes: 65_536 },
      );
    await submitTasks(ctx, [
      call('01:00:00', '2G', 1, 'a1'),
      call('00:02:00', '4608M', 1, 'a2'),
      call('00:05:00', '1G', 4, 'a3'),
    ]);
    expect((await getPool(ctx, 'bulkp'))?.spec).toMatchObject({
      time: '01:00:00',
      mem: '4608M',
      cpu: 4,
      account: 'a3',
    });
  });
});
