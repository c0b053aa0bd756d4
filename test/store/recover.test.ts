// TaskStore.recover (the recover-task script), in-process, one fresh prefix per test: the manager ends the
// run of a task on a dead worker — re-queued, lostconnection or terminated — and changes nothing when its
// view is stale (another worker, another execution, the worker alive) or the record is gone.
import { describe } from 'vitest';

import { TaskStatus as S } from '../../src/tasks/status.js';
import { finishedCount, indexesOf, it, lastEvent, queuedTask, runningTask } from '../helpers/store.js';

describe.concurrent('recover-task', () => {
  it('missing: no record', async ({ ctx, expect }) => {
    expect(await ctx.tasks.recover(4242, 'w1')).toEqual({ kind: 'missing' });
  });

  it('recovered → pending while retries are left: a loss, off the worker, still active', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { fields: { max_retries: 2 } });
    await ctx.tasks.setFenced(id, { workerId: 'w1', runToken: 'r1' }, { pid: 99 });
    expect(await ctx.tasks.recover(id, 'w1', 'r1', 6_000)).toEqual({ kind: 'recovered', status: S.pending });
    const rec = await ctx.tasks.get(id);
    expect(rec).toMatchObject({
      status: S.pending,
      losses: 1,
      reason: 're-queued: worker w1 was lost (1 of 2 retries used)',
    });
    expect(rec?.pid).toBeUndefined();
    expect(rec?.ended_at).toBeUndefined();
    // Its run is over: it has not started since (adversary 37 F1).
    expect(rec?.started_at).toBeUndefined();
    expect(await indexesOf(ctx, id)).toEqual({ active: true, onWorker: false, ttl: 'none' });
    expect(await lastEvent(ctx, id)).toMatchObject({ t: 6_000, from: S.running, to: S.pending });
  });

  it('a stop (its Slurm allocation suspended) → pending without a retry spent, even with none left (adversary 18 S2)', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { fields: { max_retries: 0 } });
    const why = "worker w1's Slurm allocation 46 was suspended";
    expect(await ctx.tasks.recover(id, 'w1', '', 6_000, why)).toEqual({
      kind: 'recovered',
      status: S.pending,
    });
    expect(await ctx.tasks.get(id)).toMatchObject({
      status: S.pending,
      losses: 0,
      reason: `re-queued: ${why}`,
    });
    expect(await indexesOf(ctx, id)).toEqual({ active: true, onWorker: false, ttl: 'none' });
  });

  it('stops by suspension are capped: the fourth is a loss (gang scheduling would re-queue a task for ever)', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { fields: { max_retries: 0 } });
    const why = "worker w1's Slurm allocation 46 was suspended";
    for (let i = 1; i <= 3; i++) {
      expect(await ctx.tasks.recover(id, 'w1', '', 6_000 + i, why)).toEqual({
        kind: 'recovered',
        status: S.pending,
      });
      expect(await ctx.tasks.get(id)).toMatchObject({ losses: 0, suspend_stops: i });
      await ctx.tasks.start(id, 'w1', 'h', 'r1', 'j1', 6_100 + i);
    }
    expect(await ctx.tasks.recover(id, 'w1', '', 7_000, why)).toEqual({
      kind: 'recovered',
      status: S.lostconnection,
    });
    expect(await ctx.tasks.get(id)).toMatchObject({ losses: 1 });
  });

  it('recovered → lostconnection when the loss spends the last retry (final, counted)', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { fields: { max_retries: 0 } });
    // No run token: whichever execution runs on w1.
    expect(await ctx.tasks.recover(id, 'w1', '', 6_000)).toEqual({
      kind: 'recovered',
      status: S.lostconnection,
    });
    expect(await ctx.tasks.get(id)).toMatchObject({
      status: S.lostconnection,
      losses: 1,
      ended_at: 6_000,
      reason: 'worker w1 was lost and no retries are left',
    });
    expect(await indexesOf(ctx, id)).toEqual({ active: false, onWorker: false, ttl: 'set' });
    expect(await finishedCount(ctx, 'p', 'lostconnection')).toBe(1);
  });

  it('recovered → lostconnection: the run ends at the worker’s last beat, not at the detection (F8)', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { fields: { max_retries: 0 } }); // started at 1,500
    await ctx.redis.hset(ctx.keys.worker('w1'), 'last_beat', 4_200);
    await ctx.tasks.recover(id, 'w1', 'r1', 9_000);
    expect(await ctx.tasks.get(id)).toMatchObject({ status: S.lostconnection, ended_at: 4_200 });
    // The detection is when the history says the task changed.
    expect(await lastEvent(ctx, id)).toMatchObject({ t: 9_000, to: S.lostconnection });
    // A last beat before the start (the worker died before beating again): the start; one past the detection
    // (a clock ahead): the detection.
    for (const [beat, ended] of [
      [1_000, 1_500],
      [20_000, 9_000],
    ]) {
      const other = await runningTask(ctx, { fields: { max_retries: 0 } });
      await ctx.redis.hset(ctx.keys.worker('w1'), 'last_beat', beat!);
      await ctx.tasks.recover(other, 'w1', 'r1', 9_000);
      expect((await ctx.tasks.get(other))?.ended_at, `beat ${beat}`).toBe(ended);
    }
    // A manager whose clock is behind the worker's (detection at 1,000 for a start at 1,500): never before the start.
    const behind = await runningTask(ctx, { fields: { max_retries: 0 } });
    await ctx.redis.hset(ctx.keys.worker('w1'), 'last_beat', 1_200);
    await ctx.tasks.recover(behind, 'w1', 'r1', 1_000);
    expect((await ctx.tasks.get(behind))?.ended_at).toBe(1_500);
  });

  it('recovered → terminated when a kill was pending, retries or not', async ({ ctx, expect }) => {
    const id = await runningTask(ctx, { fields: { max_retries: 3 }, alive: true });
    await ctx.tasks.requestKill(id);
    await ctx.redis.del(ctx.keys.workerAlive('w1')); // the worker dies
    expect(await ctx.tasks.recover(id, 'w1', 'r1')).toEqual({ kind: 'recovered', status: S.terminated });
    expect(await ctx.tasks.get(id)).toMatchObject({
      status: S.terminated,
      reason: 'killed; its worker w1 was lost',
    });
    expect(await finishedCount(ctx, 'p', 'terminated')).toBe(1);
  });

  it('worker-alive: the worker came back, nothing done', async ({ ctx, expect }) => {
    const id = await runningTask(ctx, { alive: true });
    const before = await ctx.tasks.get(id);
    expect(await ctx.tasks.recover(id, 'w1', 'r1')).toEqual({ kind: 'worker-alive' });
    expect(await ctx.tasks.get(id)).toEqual(before);
  });

  it('not-running-there: another execution of the same worker (stale run token), nothing done', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { runToken: 'r2' });
    const before = await ctx.tasks.get(id);
    expect(await ctx.tasks.recover(id, 'w1', 'r1')).toEqual({ kind: 'not-running-there', status: S.running });
    expect(await ctx.tasks.get(id)).toEqual(before);
    expect(await indexesOf(ctx, id)).toMatchObject({ onWorker: true });
  });

  it('not-running-there: running elsewhere, or not running; the dead worker’s stale entry is dropped', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { worker: 'w2', runToken: 'r2' });
    await ctx.redis.sadd(ctx.keys.workerTasks('w1'), String(id));
    const before = await ctx.tasks.get(id);
    expect(await ctx.tasks.recover(id, 'w1', 'r2')).toEqual({ kind: 'not-running-there', status: S.running });
    expect(await ctx.tasks.get(id)).toEqual(before);
    expect(await indexesOf(ctx, id, 'w1')).toMatchObject({ onWorker: false });
    expect(await indexesOf(ctx, id, 'w2')).toMatchObject({ onWorker: true });

    const waiting = await queuedTask(ctx);
    await ctx.redis.sadd(ctx.keys.workerTasks('w1'), String(waiting));
    expect(await ctx.tasks.recover(waiting, 'w1')).toEqual({ kind: 'not-running-there', status: S.queued });
    expect(await indexesOf(ctx, waiting, 'w1')).toMatchObject({ onWorker: false });
    expect(await ctx.tasks.status(waiting)).toBe(S.queued);
  });
});
