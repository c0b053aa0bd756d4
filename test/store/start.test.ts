// TaskStore.start (the start-task script), in-process, one fresh prefix per test: every branch of the
// script — started (from queued and from pending, the take-over of a lost run), skip (final, killed before
// it started, no retries left, not startable), busy, unsubmitted and missing — with what each writes.
import { describe, type ExpectStatic } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import type { TaskRecord } from '../../src/store/task-record.js';

import { TaskStatus as S } from '../../src/tasks/status.js';
import { event, finishedCount, indexesOf, it, lastEvent, queuedTask, runningTask } from '../helpers/store.js';

/**
 * A claim (worker, run token, time) that ends the task itself instead of starting it: the claim says skip with
 * the final status, and the record has that status and end time. Returns the record for the case's own checks.
 */
async function endedByClaim(
  { ctx, expect }: { ctx: JtmContext; expect: ExpectStatic },
  id: number,
  [worker, token, now]: [string, string, number],
  status: number,
): Promise<TaskRecord | undefined> {
  expect(await ctx.tasks.start(id, worker, 'h', token, '', now)).toEqual({ kind: 'skip', status });
  const rec = await ctx.tasks.get(id);
  expect(rec).toMatchObject({ status, ended_at: now });
  return rec;
}

describe.concurrent('start-task', () => {
  it('missing: no record, nothing written', async ({ ctx, expect }) => {
    expect(await ctx.tasks.start(4242, 'w1', 'h', 'r1')).toEqual({ kind: 'missing' });
    expect(await ctx.redis.exists(ctx.keys.task(4242), ctx.keys.taskEvents(4242))).toBe(0);
    expect(await ctx.redis.scard(ctx.keys.workerTasks('w1'))).toBe(0);
  });

  it('unsubmitted: a queued task whose submit has no commit key is deferred, unchanged', async ({
    ctx,
    expect,
  }) => {
    const id = await ctx.tasks.create({ command: 'true', pool: 'p', submit_id: 'open' }, 1_000);
    expect(await ctx.tasks.start(id, 'w1', 'h', 'r1')).toEqual({ kind: 'unsubmitted', queuedAt: 1_000 });
    expect(await ctx.tasks.get(id)).toMatchObject({ status: S.queued, attempts: 0 });
    expect(await ctx.tasks.events(id)).toHaveLength(1);
    expect(await indexesOf(ctx, id)).toEqual({ active: true, onWorker: false, ttl: 'none' });
  });

  it('started from queued: records the pending step too, then running, owned by this execution', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, {}, 1_000);
    expect(await ctx.tasks.start(id, 'w1', 'h1', 'run-1', 'lock-1', 2_000)).toMatchObject({
      kind: 'started',
      attempt: 1,
    });
    const rec = await ctx.tasks.get(id);
    expect(rec).toMatchObject({
      status: S.running,
      worker_id: 'w1',
      host: 'h1',
      started_at: 2_000,
      attempts: 1,
      reason: 'started',
      run_token: 'run-1',
      job_token: 'lock-1',
    });
    expect(rec?.pid).toBeUndefined();
    expect((await ctx.tasks.events(id)).slice(1)).toEqual([
      event(2_000, S.queued, S.pending, 'queued on pool'),
      event(2_000, S.pending, S.running, 'started on w1@h1'),
    ]);
    expect(await indexesOf(ctx, id)).toEqual({ active: true, onWorker: true, ttl: 'none' });
  });

  it('started from pending: one event; a first run writes no empty pid and exit code, a run after one clears them', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx);
    await ctx.tasks.transition(id, [S.queued], S.pending, 'queued on pool');
    const before = (await ctx.tasks.events(id)).length;
    expect(await ctx.tasks.start(id, 'w1', 'h', 'r1', '', 2_000)).toMatchObject({
      kind: 'started',
      attempt: 1,
    });
    expect(await ctx.tasks.events(id)).toHaveLength(before + 1);
    expect(await ctx.redis.hexists(ctx.keys.task(id), 'pid')).toBe(0);
    expect(await ctx.redis.hexists(ctx.keys.task(id), 'exit_code')).toBe(0);
    // The run is given back with its pid and an exit code written; the next run's record has neither.
    await ctx.tasks.transitionFenced(id, { workerId: 'w1', runToken: 'r1' }, S.pending, 'worker stopped', {
      pid: 7,
      exit_code: 1,
    });
    expect((await ctx.tasks.get(id))?.pid).toBe(7);
    expect(await ctx.tasks.start(id, 'w2', 'h', 'r2', '', 3_000)).toMatchObject({
      kind: 'started',
      attempt: 2,
    });
    const rec = await ctx.tasks.get(id);
    expect(rec?.pid).toBeUndefined();
    expect(rec?.exit_code).toBeUndefined();
  });

  it('skip: a final task is not run again, and not counted again', async ({ ctx, expect }) => {
    const id = await runningTask(ctx);
    await ctx.tasks.transitionFenced(id, { workerId: 'w1', runToken: 'r1' }, S.success, 'exit code 0');
    expect(await finishedCount(ctx, 'p', 'success')).toBe(1);
    const events = await ctx.tasks.events(id);
    expect(await ctx.tasks.start(id, 'w2', 'h', 'r2')).toEqual({ kind: 'skip', status: S.success });
    expect(await ctx.tasks.get(id)).toMatchObject({ status: S.success, worker_id: 'w1', attempts: 1 });
    expect(await ctx.tasks.events(id)).toEqual(events);
    expect(await finishedCount(ctx, 'p', 'success')).toBe(1);
  });

  it('skip: a kill requested before the start ends it terminated (counted once)', async ({ ctx, expect }) => {
    const id = await queuedTask(ctx);
    await ctx.redis.hset(ctx.keys.task(id), 'kill_requested', '1');
    expect(await endedByClaim({ ctx, expect }, id, ['w1', 'r1', 5_000], S.terminated)).toMatchObject({
      reason: 'killed before it started',
      attempts: 0,
    });
    expect(await indexesOf(ctx, id)).toEqual({ active: false, onWorker: false, ttl: 'set' });
    expect(await finishedCount(ctx, 'p', 'terminated')).toBe(1);
  });

  it('skip: a status a worker never starts (ready) is left as it is', async ({ ctx, expect }) => {
    const id = await queuedTask(ctx);
    await ctx.redis.hset(ctx.keys.task(id), 'status', S.ready);
    expect(await ctx.tasks.start(id, 'w1', 'h', 'r1')).toEqual({ kind: 'skip', status: S.ready });
    expect(await ctx.tasks.get(id)).toMatchObject({ status: S.ready, attempts: 0 });
  });

  it('busy: running on another live worker, nothing changes', async ({ ctx, expect }) => {
    const id = await runningTask(ctx, { alive: true });
    const before = await ctx.tasks.get(id);
    expect(await ctx.tasks.start(id, 'w2', 'h', 'r2')).toEqual({ kind: 'busy' });
    expect(await ctx.tasks.get(id)).toEqual(before);
    expect(await indexesOf(ctx, id, 'w2')).toMatchObject({ onWorker: false });
  });

  it('take-over: a run on a dead worker is a loss; the task moves to the new worker', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { fields: { max_retries: 2 } });
    expect(await ctx.tasks.start(id, 'w2', 'h2', 'r2')).toMatchObject({ kind: 'started', attempt: 2 });
    expect(await ctx.tasks.get(id)).toMatchObject({
      status: S.running,
      worker_id: 'w2',
      run_token: 'r2',
      losses: 1,
      reason: 'restarted: worker w1 was lost',
    });
    expect(await indexesOf(ctx, id, 'w1')).toMatchObject({ onWorker: false });
    expect(await indexesOf(ctx, id, 'w2')).toMatchObject({ onWorker: true });
    expect(await lastEvent(ctx, id)).toMatchObject({
      from: S.running,
      to: S.running,
      reason: 'restarted: worker w1 was lost on w2@h2',
    });
  });

  it('take-over by the same worker id (restarted under its old name, alive again) is a loss too', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx, { fields: { max_retries: 1 }, alive: true });
    expect(await ctx.tasks.start(id, 'w1', 'h', 'r2')).toMatchObject({ kind: 'started', attempt: 2 });
    expect(await ctx.tasks.get(id)).toMatchObject({ worker_id: 'w1', run_token: 'r2', losses: 1 });
    expect(await indexesOf(ctx, id, 'w1')).toMatchObject({ onWorker: true });
  });

  it('the same claim again (ioredis resends a command whose answer was lost) is answered as it was, changing nothing (adversary 26 F2)', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, { max_retries: 0 });
    const first = await ctx.tasks.start(id, 'w1', 'h', 'r1', 'j1', 2_000);
    const before = await ctx.tasks.get(id);
    const events = await ctx.tasks.events(id);
    // Resent as it was: same worker, run token and time. It ended the task lostconnection ("worker w1 was lost").
    expect(await ctx.tasks.start(id, 'w1', 'h', 'r1', 'j1', 2_000)).toEqual(first);
    expect(await ctx.tasks.get(id)).toEqual(before);
    expect(await ctx.tasks.events(id)).toEqual(events);
  });

  it('skip: a lost run with no retries left ends lostconnection (counted once)', async ({ ctx, expect }) => {
    const id = await runningTask(ctx, { fields: { max_retries: 0 } });
    expect(await endedByClaim({ ctx, expect }, id, ['w2', 'r2', 9_000], S.lostconnection)).toMatchObject({
      worker_id: 'w1',
      losses: 1,
      reason: 'worker w1 was lost and no retries are left',
    });
    expect(await indexesOf(ctx, id, 'w1')).toMatchObject({ active: false, onWorker: false });
    expect(await indexesOf(ctx, id, 'w2')).toMatchObject({ onWorker: false });
    // A later claim of the now final task must not count it again (the metrics read these counters).
    expect(await ctx.tasks.start(id, 'w3', 'h', 'r3')).toEqual({ kind: 'skip', status: S.lostconnection });
    expect(await ctx.redis.hgetall(ctx.keys.statsFinished)).toEqual({ 'p:lostconnection': '1' });
    expect(await ctx.redis.hgetall(ctx.keys.statsSubmitted)).toEqual({ p: '1' });
  });
});
