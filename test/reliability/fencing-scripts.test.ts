// Every branch of the fencing scripts (start-task, transition with a fence, fenced-set, recover-task) and the
// fenced job moves of the manager, in-process against the test Redis: fast, no worker processes.
import { Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';

import { recoverTask, emptyCounts } from '../../src/manager/dead-workers.js';
import { TaskJobs } from '../../src/manager/task-jobs.js';
import { jobIdOf, TASK_JOB_NAME, taskJobOptions } from '../../src/tasks/job-data.js';
import { openPoolQueue } from '../../src/tasks/pool-queue.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { useTestContext } from '../helpers/context.js';
import { testEnv } from '../helpers/env.js';
import { queuedTask as queuedTaskOf, setAlive } from '../helpers/store.js';

const ctx = useTestContext(testEnv());

/** A committed task (its submit's commit key exists), status queued, `retries` retries (helpers/store.ts). */
const queuedTask = (retries = 1, pool = 'p'): Promise<number> =>
  queuedTaskOf(ctx(), { max_retries: retries, pool });

const alive = (worker: string, on = true): Promise<void> => setAlive(ctx(), worker, on);

const fence = (workerId: string, runToken: string) => ({ workerId, runToken });

describe('start-task', () => {
  it('defers a queued task whose submit has no commit key; starts it once committed', async () => {
    const id = await ctx().tasks.create({ command: 'true', pool: 'p', max_retries: 1, submit_id: 'never' });
    expect(await ctx().tasks.start(id, 'w1', 'h', 'r1')).toMatchObject({
      kind: 'unsubmitted',
      queuedAt: expect.any(Number),
    });
    const legacy = await ctx().tasks.create({ command: 'true', pool: 'p', max_retries: 1 });
    expect(await ctx().tasks.start(legacy, 'w1', 'h', 'r1')).toMatchObject({
      kind: 'unsubmitted',
      queuedAt: expect.any(Number),
    });
    expect(await ctx().tasks.status(id)).toBe(TaskStatus.queued);
    await ctx().redis.set(ctx().keys.submit('never'), 1);
    expect(await ctx().tasks.start(id, 'w1', 'h', 'r1', 'lock1')).toMatchObject({
      kind: 'started',
      attempt: 1,
    });
    expect(await ctx().tasks.get(id)).toMatchObject({ status: 3, run_token: 'r1', job_token: 'lock1' });
  });

  it('defers a queued task whose submit was taken back (commit key "0"): a late commit cannot start it', async () => {
    const id = await ctx().tasks.create({ command: 'true', pool: 'p', max_retries: 1, submit_id: 'taken' });
    await ctx().redis.set(ctx().keys.submit('taken'), '0');
    expect(await ctx().tasks.start(id, 'w1', 'h', 'r1')).toMatchObject({ kind: 'unsubmitted' });
    expect(await ctx().tasks.status(id)).toBe(TaskStatus.queued);
  });

  it('a running task on a live worker is busy; on a dead one it is taken over, and that is a loss', async () => {
    const id = await queuedTask(1);
    await alive('w1');
    expect((await ctx().tasks.start(id, 'w1', 'h', 'r1')).kind).toBe('started');
    expect(await ctx().tasks.start(id, 'w2', 'h', 'r2')).toEqual({ kind: 'busy' });
    await alive('w1', false);
    expect(await ctx().tasks.start(id, 'w2', 'h', 'r2')).toMatchObject({ kind: 'started', attempt: 2 });
    expect(await ctx().tasks.get(id)).toMatchObject({ worker_id: 'w2', run_token: 'r2', losses: 1 });
    // Second loss with one retry: lostconnection.
    expect(await ctx().tasks.start(id, 'w3', 'h', 'r3')).toEqual({
      kind: 'skip',
      status: TaskStatus.lostconnection,
    });
    expect((await ctx().tasks.get(id))?.reason).toBe('worker w2 was lost and no retries are left');
  });

  it('a graceful stop gives the task back without spending a retry (issue 13, item 5)', async () => {
    const id = await queuedTask(1);
    await ctx().tasks.start(id, 'w1', 'h', 'r1');
    // SIGTERM: the worker gives the task back (fenced transition to pending).
    expect((await ctx().tasks.transitionFenced(id, fence('w1', 'r1'), TaskStatus.pending, 'stop')).done).toBe(
      true,
    );
    await ctx().tasks.start(id, 'w2', 'h', 'r2');
    // SIGKILL of the next worker: one loss, one retry left → re-run, not lostconnection.
    await alive('w2', false);
    expect(await ctx().tasks.start(id, 'w3', 'h', 'r3')).toMatchObject({ kind: 'started', attempt: 3 });
    expect(await ctx().tasks.get(id)).toMatchObject({ attempts: 3, losses: 1, status: 3 });
  });
});

describe('fenced writes', () => {
  it('only the execution that owns the task records its end; a stale one changes nothing', async () => {
    const id = await queuedTask(1);
    await ctx().tasks.start(id, 'w1', 'h', 'r1');
    await alive('w1', false);
    await ctx().tasks.start(id, 'w2', 'h', 'r2');
    // The paused worker w1 resumes and its stale run ends: refused (wrong worker and token).
    const stale = await ctx().tasks.transitionFenced(
      id,
      fence('w1', 'r1'),
      TaskStatus.failed,
      'exit code 3',
      {
        exit_code: 3,
      },
    );
    expect(stale).toEqual({ done: false, current: TaskStatus.running, fenced: true });
    expect(await ctx().tasks.setFenced(id, fence('w1', 'r1'), { pid: 111 })).toBe(false);
    // Same worker, older execution (its job handed back by BullMQ's stalled check): refused too.
    expect(
      (await ctx().tasks.transitionFenced(id, fence('w2', 'r1'), TaskStatus.failed, 'stale', {})).done,
    ).toBe(false);
    expect(await ctx().tasks.setFenced(id, fence('w2', 'r2'), { pid: 222 })).toBe(true);
    const live = await ctx().tasks.transitionFenced(
      id,
      fence('w2', 'r2'),
      TaskStatus.success,
      'exit code 0',
      {
        exit_code: 0,
      },
    );
    expect(live).toEqual({ done: true, previous: TaskStatus.running });
    expect(await ctx().tasks.get(id)).toMatchObject({ status: 4, exit_code: 0, pid: 222, worker_id: 'w2' });
    // After the end, nothing of any execution is written.
    expect(await ctx().tasks.setFenced(id, fence('w2', 'r2'), { pid: 333 })).toBe(false);
    expect((await ctx().tasks.transitionFenced(id, fence('w2', 'r2'), -2, 'late')).done).toBe(false);
    expect(await ctx().tasks.transitionFenced(999_999, fence('w2', 'r2'), -2, 'none')).toEqual({
      done: false,
      current: undefined,
    });
  });

  it('a fenced write on a task that is not running fails on its status, not on the fence', async () => {
    const id = await queuedTask(1);
    expect(await ctx().tasks.transitionFenced(id, fence('w1', 'r1'), -2, 'x')).toEqual({
      done: false,
      current: TaskStatus.queued,
    });
  });
});

describe('recover-task', () => {
  it('acts only on the execution it decided about, on a worker still dead', async () => {
    const id = await queuedTask(1);
    await alive('w1');
    await ctx().tasks.start(id, 'w1', 'h', 'r1');
    expect(await ctx().tasks.recover(id, 'w1', 'r1')).toEqual({ kind: 'worker-alive' });
    await alive('w1', false);
    // Decision made on another execution (stale view): nothing done.
    expect(await ctx().tasks.recover(id, 'w1', 'r0')).toEqual({ kind: 'not-running-there', status: 3 });
    expect(await ctx().tasks.status(id)).toBe(TaskStatus.running);
    expect(await ctx().tasks.recover(id, 'w1', 'r1')).toEqual({
      kind: 'recovered',
      status: TaskStatus.pending,
    });
    expect(await ctx().tasks.get(id)).toMatchObject({ losses: 1, status: 2 });
    // The worker came back from a pause: its write is refused.
    expect((await ctx().tasks.transitionFenced(id, fence('w1', 'r1'), 4, 'late')).done).toBe(false);
    await ctx().tasks.start(id, 'w2', 'h', 'r2');
    expect(await ctx().tasks.recover(id, 'w2', 'r2')).toEqual({
      kind: 'recovered',
      status: TaskStatus.lostconnection,
    });
  });
});

describe('manager job moves are fenced on the dead execution lock', () => {
  it('a stale recovery never moves a job another worker fetched since (issue 13, item 4)', async () => {
    const pool = `fj-${Math.random().toString(36).slice(2, 8)}`;
    const id = await queuedTask(2, pool);
    const q = openPoolQueue(ctx(), pool);
    await q.add(TASK_JOB_NAME, { id }, taskJobOptions(id));
    // BullMQ does not close a connection it is given: quit in the finally below.
    const conn = ctx().redis.duplicate();
    const bw = new Worker(ctx().keys.poolQueue(pool), null, {
      connection: conn,
      prefix: ctx().keys.queuePrefix,
      autorun: false,
      lockDuration: 60_000,
    });
    const jobs = new TaskJobs(ctx());
    try {
      // w1 fetched the job (lock L1) and started the task; then w1 died.
      const j1 = await bw.getNextJob('L1');
      expect(j1?.id).toBe(jobIdOf(id));
      await ctx().tasks.start(id, 'w1', 'h', 'r1', 'L1');
      await alive('w1', false);
      // The manager reads (status, owner, tokens) ... and sleeps. Meanwhile BullMQ hands the job to w2.
      const view = await ctx().tasks.get(id);
      await j1!.moveToWait('L1');
      const j2 = await bw.getNextJob('L2');
      expect(j2?.id).toBe(jobIdOf(id));
      await alive('w2');
      await ctx().tasks.start(id, 'w2', 'h', 'r2', 'L2');
      // The manager resumes and applies its stale decision: both writes are refused.
      expect(await jobs.redeliver(pool, id, view!.job_token)).toBe('active');
      await jobs.end(pool, jobIdOf(id), 'worker lost', view!.job_token);
      expect(await q.getJobState(jobIdOf(id))).toBe('active');
      expect(await ctx().tasks.recover(id, 'w1', view!.run_token)).toEqual({
        kind: 'not-running-there',
        status: 3,
      });
      expect(await ctx().tasks.get(id)).toMatchObject({ status: 3, worker_id: 'w2', run_token: 'r2' });
      // recoverTask as a whole, on the (fresh) view of a dead w1, changes nothing of w2's run either.
      const counts = emptyCounts();
      await recoverTask(ctx(), jobs, id, 'w1', counts);
      expect(counts).toEqual(emptyCounts());
      expect(await q.getJobState(jobIdOf(id))).toBe('active');
      // w2 dies: its own lock moves the job back, and the record follows.
      await alive('w2', false);
      await recoverTask(ctx(), jobs, id, 'w2', counts);
      expect(counts.requeued).toBe(1);
      expect(await q.getJobState(jobIdOf(id))).toBe('waiting');
      // Two losses (w1's, counted when w2 took over, and w2's), two retries: re-queued.
      expect(await ctx().tasks.get(id)).toMatchObject({ status: 2, losses: 2 });
    } finally {
      await bw.close();
      await conn.quit();
      await jobs.close();
      await q.close();
    }
  });
});
