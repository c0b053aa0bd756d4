// commitSubmit (src/tasks/submit-commit.ts, COMMIT_SUBMIT): the commit and the pending mark of the first tasks in
// one script run. Each branch: a new commit, a commit sent again (ioredis's resend), a submit taken back first.
import { describe } from 'vitest';

import { TaskStatus } from '../../src/tasks/status.js';
import { ABORTED, abortUnlessCommitted, commitSubmit } from '../../src/tasks/submit-commit.js';
import { it } from '../helpers/store.js';

describe.concurrent('commitSubmit', () => {
  it('commits the count and marks the queued tasks given pending, history queued → pending', async ({
    ctx,
    expect,
  }) => {
    const ids = await ctx.tasks.createMany([1, 2, 3].map(i => ({ command: `echo ${i}`, submit_id: 's1' })));
    expect(await commitSubmit(ctx, 's1', 3, ids.slice(0, 2))).toBe(true);
    expect(await ctx.redis.get(ctx.keys.submit('s1'))).toBe('3');
    // The commit key lives as long as a finished record.
    expect(await ctx.redis.pttl(ctx.keys.submit('s1'))).toBeGreaterThan(ctx.config.taskRetentionMs - 60_000);
    const records = await Promise.all(ids.map(id => ctx.tasks.get(id)));
    expect(records.map(r => [r?.status, r?.reason])).toEqual([
      [TaskStatus.pending, 'queued on pool'],
      [TaskStatus.pending, 'queued on pool'],
      [TaskStatus.queued, undefined],
    ]);
    const events = await ctx.tasks.events(ids[0]!);
    expect(events.map(e => [e.from, e.to, e.reason])).toEqual([
      [TaskStatus.ready, TaskStatus.queued, 'submitted'],
      [TaskStatus.queued, TaskStatus.pending, 'queued on pool'],
    ]);
  });

  it('sent again: still committed, marks nothing twice, leaves a task that moved on as it is', async ({
    ctx,
    expect,
  }) => {
    const ids = await ctx.tasks.createMany([1, 2].map(i => ({ command: `echo ${i}`, submit_id: 's2' })));
    expect(await commitSubmit(ctx, 's2', 2, ids)).toBe(true);
    await ctx.tasks.requestKill(ids[1]!);
    expect(await commitSubmit(ctx, 's2', 2, ids)).toBe(true);
    expect(await ctx.redis.get(ctx.keys.submit('s2'))).toBe('2');
    expect((await ctx.tasks.get(ids[1]!))?.status).toBe(TaskStatus.terminated);
    const events = await ctx.tasks.events(ids[0]!);
    expect(events.filter(e => e.to === TaskStatus.pending)).toHaveLength(1);
  });

  it('a submit taken back first: false, the key stays taken back, the tasks stay queued', async ({
    ctx,
    expect,
  }) => {
    const ids = await ctx.tasks.createMany([1, 2].map(i => ({ command: `echo ${i}`, submit_id: 's3' })));
    expect(await abortUnlessCommitted(ctx, 's3')).toBe('aborted');
    expect(await commitSubmit(ctx, 's3', 2, ids)).toBe(false);
    expect(await ctx.redis.get(ctx.keys.submit('s3'))).toBe(ABORTED);
    const records = await Promise.all(ids.map(id => ctx.tasks.get(id)));
    expect(records.map(r => r?.status)).toEqual([TaskStatus.queued, TaskStatus.queued]);
  });
});
