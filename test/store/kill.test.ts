// TaskStore.requestKill (the request-kill script), in-process, one fresh prefix per test: missing, already
// final, ended at once (queued, pending), running on a live worker (signal it) and on a dead one (ended).
import { describe } from 'vitest';

import { TaskStatus as S } from '../../src/tasks/status.js';
import { event, finishedCount, indexesOf, it, lastEvent, queuedTask, runningTask } from '../helpers/store.js';

describe.concurrent('request-kill', () => {
  it('missing: no record, nothing written', async ({ ctx, expect }) => {
    expect(await ctx.tasks.requestKill(4242)).toEqual({ kind: 'missing' });
    expect(await ctx.redis.exists(ctx.keys.task(4242))).toBe(0);
  });

  it('final: an ended task is left as it is', async ({ ctx, expect }) => {
    const id = await queuedTask(ctx);
    await ctx.tasks.transition(id, [S.queued], S.failed, 'bad');
    const before = await ctx.tasks.get(id);
    expect(await ctx.tasks.requestKill(id)).toEqual({ kind: 'final', status: S.failed });
    expect(await ctx.tasks.get(id)).toEqual(before);
    expect(await finishedCount(ctx, 'p', 'terminated')).toBe(0);
  });

  it('the same request sent again (its answer lost to a reset) gets the answer it got; another request sees the end (adversary 37 F9)', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx);
    expect(await ctx.tasks.requestKill(id, 3_000, 'k1')).toEqual({ kind: 'ended', previous: S.queued });
    const after = await ctx.tasks.get(id);
    // It answered "already ended" (final) for the kill that ended the task.
    expect(await ctx.tasks.requestKill(id, 3_100, 'k1')).toEqual({ kind: 'ended', previous: S.queued });
    expect(await ctx.tasks.get(id)).toEqual(after);
    expect(await finishedCount(ctx, 'p', 'terminated')).toBe(1);
    expect(await ctx.tasks.requestKill(id, 3_200, 'k2')).toEqual({ kind: 'final', status: S.terminated });
    expect(await ctx.tasks.requestKill(id, 3_200)).toEqual({ kind: 'final', status: S.terminated });
    // On a dead worker: worker-dead again.
    const onDead = await runningTask(ctx, { worker: 'dead1' });
    expect(await ctx.tasks.requestKill(onDead, 3_000, 'k3')).toEqual({
      kind: 'worker-dead',
      workerId: 'dead1',
    });
    expect(await ctx.tasks.requestKill(onDead, 3_100, 'k3')).toEqual({
      kind: 'worker-dead',
      workerId: 'dead1',
    });
    // On a live worker: told again, and once the worker has ended it, still "signal the worker" (which then sees
    // the end), not "already ended by itself".
    const live = await runningTask(ctx, { worker: 'w-live', alive: true });
    expect(await ctx.tasks.requestKill(live, 3_000, 'k4')).toEqual({
      kind: 'signal-worker',
      workerId: 'w-live',
    });
    await ctx.tasks.transitionFenced(
      live,
      { workerId: 'w-live', runToken: 'r1' },
      S.terminated,
      'killed on request',
      {},
      3_050,
    );
    expect(await ctx.tasks.requestKill(live, 3_100, 'k4')).toEqual({
      kind: 'signal-worker',
      workerId: 'w-live',
    });
  });

  for (const [name, status] of [
    ['queued', S.queued],
    ['pending', S.pending],
  ] as const) {
    it(`ended: a ${name} task is terminated at once (counted once)`, async ({ ctx, expect }) => {
      const id = await queuedTask(ctx);
      if (status === S.pending)
        await ctx.tasks.transition(id, [S.queued], S.pending, 'queued on pool', {}, 2_000);
      expect(await ctx.tasks.requestKill(id, 3_000)).toEqual({ kind: 'ended', previous: status });
      expect(await ctx.tasks.get(id)).toMatchObject({
        status: S.terminated,
        reason: 'killed before it started',
        ended_at: 3_000,
      });
      expect(await lastEvent(ctx, id)).toEqual(
        event(3_000, status, S.terminated, 'killed before it started'),
      );
      expect(await indexesOf(ctx, id)).toEqual({ active: false, onWorker: false, ttl: 'set' });
      expect(await finishedCount(ctx, 'p', 'terminated')).toBe(1);
    });
  }

  it('signal-worker: running on a live worker, the intent is recorded and the task keeps running', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { alive: true });
    expect(await ctx.tasks.requestKill(id, 4_000)).toEqual({ kind: 'signal-worker', workerId: 'w1' });
    expect(await ctx.tasks.get(id)).toMatchObject({ status: S.running, kill_requested: true });
    expect(await ctx.redis.hget(ctx.keys.task(id), 'kill_requested_at')).toBe('4000');
    expect(await lastEvent(ctx, id)).toEqual(event(4_000, S.running, S.running, 'kill requested'));
    expect(await indexesOf(ctx, id)).toEqual({ active: true, onWorker: true, ttl: 'none' });
    // A second kill says the same (the worker may not have acted yet), and records nothing more: the first
    // request's time stays, one history entry (120 concurrent kills wrote 25, pushing older ones out).
    const history = await ctx.redis.hget(ctx.keys.task(id), 'history');
    expect(await ctx.tasks.requestKill(id, 5_000)).toEqual({ kind: 'signal-worker', workerId: 'w1' });
    expect(await ctx.redis.hget(ctx.keys.task(id), 'kill_requested_at')).toBe('4000');
    expect(await ctx.redis.hget(ctx.keys.task(id), 'history')).toBe(history);
    expect(await finishedCount(ctx, 'p', 'terminated')).toBe(0);
  });

  it('worker-dead: running on a dead worker, terminated at once and off its task set', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx);
    expect(await ctx.tasks.requestKill(id)).toEqual({ kind: 'worker-dead', workerId: 'w1' });
    expect(await ctx.tasks.get(id)).toMatchObject({
      status: S.terminated,
      reason: 'killed; its worker w1 is not alive',
      kill_requested: true,
    });
    expect(await indexesOf(ctx, id)).toMatchObject({ active: false, onWorker: false });
    expect(await finishedCount(ctx, 'p', 'terminated')).toBe(1);
  });
});

// A kill that lands as the task's timeout is ending it (adversarial test 4): the record says `timeout`, the
// timeout's rc (124) is written as the table promises, and `jtm kill` says the task had ended (not "killed").
describe.concurrent('a kill as another end is under way', () => {
  it('answers already-final with the status that won, and the rc of that status', async ({ ctx, expect }) => {
    const { killTask } = await import('../../src/tasks/kill-task.js');
    const { rcCodeFor } = await import('../../src/tasks/rc-file.js');
    const id = await runningTask(ctx, { alive: true });
    const killing = killTask(ctx, id, 5_000);
    // The worker records the timeout it was already acting on.
    await new Promise(r => setTimeout(r, 200));
    await ctx.tasks.transitionFenced(
      id,
      { workerId: 'w1', runToken: 'r1' },
      S.timeout,
      'timed out after 2 s',
    );
    expect(await killing).toEqual({ task_id: id, status: 'timeout', action: 'already-final' });
    const rec = await ctx.tasks.get(id);
    expect(rec).toMatchObject({ status: S.timeout, kill_requested: true });
    expect(rcCodeFor(rec!)).toBe(124);
    // A kill that did end it: no rc of JTM's (Cromwell's abort).
    expect(rcCodeFor({ ...rec!, status: S.terminated })).toBeUndefined();
  });
});
