// The task scripts' per-task work folded into them (issue 15): start-task returns the run spec, every path to
// a final status counts it in the same script (finalize), create-task(s) count submissions and share the
// fields common to a bulk call, the BullMQ job carries the task id alone, and endTask is the one end path.
// In-process against the test Redis: fast, no worker processes.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { createMetricsRegistry } from '../../src/metrics/registry.js';
import { endTask } from '../../src/tasks/end-task.js';
import { jobIdOf } from '../../src/tasks/job-data.js';
import { QUEUE_EVENTS_MAX_LEN } from '../../src/pools/pool-queue.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { guardIdCounter, ID_ROLLBACK_MARGIN, type IdCounterSeen } from '../../src/manager/id-counter.js';
import { analyse } from '../../src/report/analyse.js';
import { readRecords } from '../../src/report/read-tasks.js';
import { submitTasks } from '../../src/tasks/submit-task.js';
import { useTestContext } from '../helpers/context.js';
import { tempDir, testEnv } from '../helpers/env.js';
import { queuedTask as committed } from '../helpers/store.js';

const ctx = useTestContext(testEnv());

const uniquePool = (): string => `ts-${Math.random().toString(36).slice(2, 8)}`;

/** A committed queued task of `pool` with no retries unless `fields` say so (helpers/store.ts). */
const queuedTask = (pool: string, fields: Record<string, unknown> = {}, queuedAt?: number): Promise<number> =>
  committed(ctx(), { pool, max_retries: 0, ...fields }, queuedAt);

/** Task `id` started by `workerId` (run `runToken`) at `startedAt` and recorded a success at `endedAt`. */
async function runsToSuccess(
  id: number,
  workerId: string,
  runToken: string,
  startedAt: number,
  endedAt: number,
): Promise<void> {
  await ctx().tasks.start(id, workerId, 'h', runToken, '', startedAt);
  await ctx().tasks.transitionFenced(id, { workerId, runToken }, TaskStatus.success, 'ok', {}, endedAt);
}

async function finished(pool: string): Promise<Record<string, string>> {
  const all = await ctx().redis.hgetall(ctx().keys.statsFinished);
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith(`${pool}:`)));
}

async function histogram(key: string, pool: string): Promise<Record<string, string>> {
  const all = await ctx().redis.hgetall(key);
  return Object.fromEntries(Object.entries(all).filter(([k]) => k.startsWith(`${pool}:`)));
}

describe('start-task returns the run spec', () => {
  it('gives the worker the record fields it runs from, unset ones left out', async () => {
    const pool = uniquePool();
    const runFields = {
      command: 'echo "a b" > x',
      cwd: '/tmp',
      stdout: '/tmp/o',
      timeout_ms: 90_000,
      allow_empty_outputs: true,
      mem_limit: '4G',
      rc_file: '/tmp/rc',
    };
    const id = await queuedTask(pool, runFields);
    const claim = await ctx().tasks.start(id, 'w1', 'h', 'r1');
    expect(claim).toEqual({ kind: 'started', attempt: 1, spec: { id, ...runFields } });
    const bare = await queuedTask(pool);
    expect(await ctx().tasks.start(bare, 'w1', 'h', 'r2')).toEqual({
      kind: 'started',
      attempt: 1,
      spec: { id: bare, command: 'true' },
    });
  });
});

describe('finished counters, in the scripts that end a task', () => {
  it('transition: one count per end, with run time and queue wait; refused or non-final changes count nothing', async () => {
    const pool = uniquePool();
    const t0 = Date.now();
    const id = await queuedTask(pool, {}, t0 - 2_000);
    await ctx().tasks.start(id, 'w1', 'h', 'r1', '', t0);
    // A stale execution's end is refused and counts nothing.
    expect(
      await ctx().tasks.transitionFenced(
        id,
        { workerId: 'w1', runToken: 'old' },
        TaskStatus.success,
        'x',
        {},
        t0 + 1,
      ),
    ).toMatchObject({ done: false, fenced: true });
    expect(await finished(pool)).toEqual({});
    const done = await ctx().tasks.transitionFenced(
      id,
      { workerId: 'w1', runToken: 'r1' },
      TaskStatus.success,
      'exit code 0',
      { exit_code: 0, pid: 42 },
      t0 + 7_000,
    );
    expect(done).toEqual({ done: true, previous: TaskStatus.running });
    expect(await ctx().tasks.get(id)).toMatchObject({ exit_code: 0, pid: 42, ended_at: t0 + 7_000 });
    expect(await finished(pool)).toEqual({ [`${pool}:success`]: '1' });
    // 7 s of run time: bucket 2 (≤ 15 s); 2 s of wait: bucket 3 (≤ 5 s), 0-based.
    expect(await histogram(ctx().keys.statsDuration, pool)).toEqual({
      [`${pool}:2`]: '1',
      [`${pool}:sum_ms`]: '7000',
    });
    expect(await histogram(ctx().keys.statsQueueWait, pool)).toEqual({
      [`${pool}:3`]: '1',
      [`${pool}:sum_ms`]: '2000',
    });
    // Already final: refused, not counted again.
    expect(await ctx().tasks.transition(id, [TaskStatus.running], TaskStatus.failed, 'x')).toMatchObject({
      done: false,
    });
    const requeued = await queuedTask(pool);
    await ctx().tasks.start(requeued, 'w1', 'h', 'r3');
    await ctx().tasks.transitionFenced(
      requeued,
      { workerId: 'w1', runToken: 'r3' },
      TaskStatus.pending,
      'stop',
    );
    expect(await finished(pool)).toEqual({ [`${pool}:success`]: '1' });
    expect(await ctx().redis.sismember(ctx().keys.workerTasks('w1'), String(requeued))).toBe(0);
  });

  it('the exported histogram sum reads the integer sum_ms and a sum in seconds counted before it', async () => {
    const pool = uniquePool();
    const id = await queuedTask(pool, {}, 1_000_000);
    await runsToSuccess(id, 'w1', 'r1', 1_000_250, 1_001_750);
    // What the scripts counted before sum_ms: HINCRBYFLOAT of seconds into `<pool>:sum`.
    await ctx().redis.hset(ctx().keys.statsDuration, `${pool}:sum`, '0.5');
    const lines = async (name: string): Promise<string[]> =>
      (await createMetricsRegistry(ctx()).getSingleMetricAsString(name)).split('\n');
    const duration = await lines('jtm_task_duration_seconds');
    expect(duration).toContain(`jtm_task_duration_seconds_sum{pool="${pool}"} 2`);
    expect(duration).toContain(`jtm_task_duration_seconds_count{pool="${pool}"} 1`);
    const wait = await lines('jtm_task_queue_wait_seconds');
    expect(wait).toContain(`jtm_task_queue_wait_seconds_sum{pool="${pool}"} 0.25`);
  });

  it('the id counter guard raises a counter that went back, and one of a Redis that restarted (run id changed), once per change', async () => {
    // Review of adversary 7 H1: a loss of the last second (AOF everysec, a lagging replica) leaves the counter
    // above what the last sweep saw: only the restart tells. Its run id is kept in Redis (guardRunId), so the
    // first to hand out or look at ids after a change raises the counter, and only that one (adversary 29 F1).
    const { nextTaskId: key, idCounterRunId: runKey } = ctx().keys;
    const counter = async (): Promise<number> => Number((await ctx().redis.get(key)) ?? 0);
    const seen: IdCounterSeen = { high: 0 };
    await guardIdCounter(ctx(), seen); // records this Redis's run id
    const before = await counter();
    await guardIdCounter(ctx(), seen);
    expect(await counter()).toBe(before);
    // What a restart leaves: the key names the Redis that handed out the last ids, not this one.
    await ctx().redis.set(runKey, 'another-redis');
    await guardIdCounter(ctx(), seen);
    const raised = await counter();
    expect(raised).toBe(before + ID_ROLLBACK_MARGIN);
    // The identity the guard keeps (run id and replication id), which the manager compares between sweeps.
    expect(await ctx().redis.get(runKey)).toBe(seen.runId);
    expect(seen.runId).toMatch(/^[0-9a-f]{40}:[0-9a-f]{40}$/);
    await guardIdCounter(ctx(), seen);
    expect(await counter()).toBe(raised);
    // Went back below the highest value seen (no restart: the counter deleted, a FLUSHALL).
    await guardIdCounter(ctx(), { high: raised + 10, runId: seen.runId! });
    expect(await counter()).toBe(raised + 10 + ID_ROLLBACK_MARGIN);
  });

  it('counts the queue wait of the run that ended, from its last return to the queue (not its first run)', async () => {
    // Adversary 5 G5: a task that ran 11 s, was given back and re-ran at once showed 13.6 s of waiting.
    const pool = uniquePool();
    const id = await queuedTask(pool, {}, 2_000_000);
    const fence = (runToken: string) => ({ workerId: 'w1', runToken });
    await ctx().tasks.start(id, 'w1', 'h', 'r1', '', 2_000_100);
    await ctx().tasks.transitionFenced(id, fence('r1'), TaskStatus.pending, 'stop', {}, 2_011_000);
    await ctx().tasks.start(id, 'w1', 'h', 'r2', '', 2_011_300);
    // A kill request on the running task (running to running in the history) is no return to the queue.
    await ctx().tasks.requestKill(id, 2_011_500);
    await ctx().tasks.transitionFenced(id, fence('r2'), TaskStatus.success, 'ok', {}, 2_012_000);
    // A takeover (its worker lost, its job fetched again): the new run waited for nothing after the takeover.
    const taken = await queuedTask(pool, { max_retries: 1 }, 3_000_000);
    await ctx().tasks.start(taken, 'gone', 'h', 'r1', '', 3_000_100); // its worker has no alive key
    await runsToSuccess(taken, 'w2', 'r2', 3_005_000, 3_006_000);
    // Clocks that differ: the give-back (its worker 15 ms ahead) is stamped after the next start; found by
    // order, it still bounds the wait (0 here), which did not fall back to the submission (11 s).
    const skewed = await queuedTask(pool, {}, 4_000_000);
    await ctx().tasks.start(skewed, 'w1', 'h', 'r1', '', 4_000_100);
    await ctx().tasks.transitionFenced(skewed, fence('r1'), TaskStatus.pending, 'stop', {}, 4_011_020);
    await ctx().tasks.start(skewed, 'w1', 'h', 'r2', '', 4_011_005);
    await ctx().tasks.transitionFenced(skewed, fence('r2'), TaskStatus.success, 'ok', {}, 4_012_000);
    const wait = await histogram(ctx().keys.statsQueueWait, pool);
    expect(wait[`${pool}:sum_ms`]).toBe('300');
    // The report reads it the same way (read-tasks.ts), and its figure is the same.
    const recs = await readRecords(ctx(), [id, taken, skewed]);
    expect(recs.map(r => r.waiting_since)).toEqual([2_011_000, 3_005_000, 4_011_005]);
    expect(analyse(recs, {}, 3_100_000).data.queue_wait_s?.max).toBe(0.3);
  });

  it('start-task (killed before it started, lost with no retries), request-kill, recover-task, transition-many', async () => {
    const pool = uniquePool();
    const killedEarly = await queuedTask(pool);
    await ctx().redis.hset(ctx().keys.task(killedEarly), 'kill_requested', '1');
    expect(await ctx().tasks.start(killedEarly, 'w1', 'h', 'r1')).toEqual({
      kind: 'skip',
      status: TaskStatus.terminated,
    });
    const lost = await queuedTask(pool);
    await ctx().tasks.start(lost, 'gone', 'h', 'r1'); // its worker has no alive key
    expect(await ctx().tasks.start(lost, 'w2', 'h', 'r2')).toEqual({
      kind: 'skip',
      status: TaskStatus.lostconnection,
    });
    const queued = await queuedTask(pool);
    expect(await ctx().tasks.requestKill(queued)).toEqual({ kind: 'ended', previous: TaskStatus.queued });
    const onDead = await queuedTask(pool);
    await ctx().tasks.start(onDead, 'dead1', 'h', 'r1');
    expect(await ctx().tasks.requestKill(onDead)).toEqual({ kind: 'worker-dead', workerId: 'dead1' });
    const recovered = await queuedTask(pool);
    await ctx().tasks.start(recovered, 'dead2', 'h', 'r1');
    expect(await ctx().tasks.recover(recovered, 'dead2', 'r1')).toEqual({
      kind: 'recovered',
      status: TaskStatus.lostconnection,
    });
    const many = [await queuedTask(pool), await queuedTask(pool)];
    expect(await ctx().tasks.transitionMany(many, [TaskStatus.queued], TaskStatus.failed, 'x')).toBe(2);
    expect(await finished(pool)).toEqual({
      [`${pool}:terminated`]: '3',
      [`${pool}:lostconnection`]: '2',
      [`${pool}:failed`]: '2',
    });
    // Two of them ran (lost, recovered): their run time was observed; the rest never started.
    const runs = await histogram(ctx().keys.statsDuration, pool);
    expect(Object.entries(runs).filter(([k]) => !k.endsWith(':sum_ms'))).toEqual([[`${pool}:0`, '3']]);
    for (const id of [killedEarly, lost, queued, onDead, recovered, ...many]) {
      expect(await ctx().redis.zscore(ctx().keys.activeTasks, String(id))).toBeNull();
      expect(await ctx().redis.pttl(ctx().keys.task(id))).toBeGreaterThan(0);
    }
  });
});

describe('create-task(s)', () => {
  it('counts submissions per pool and writes fields shared by a bulk call once per call, to every record', async () => {
    const [a, b] = [uniquePool(), uniquePool()];
    const ids = await ctx().tasks.createMany([
      { command: 'one', pool: a, cwd: '/w', submit_id: 's1', max_retries: 2 },
      { command: 'two', pool: a, cwd: '/w', submit_id: 's1', max_retries: 2, timeout_ms: 5 },
      { command: 'three', pool: b, cwd: '/w', submit_id: 's1', max_retries: 2 },
    ]);
    expect(ids).toEqual([ids[0], ids[0]! + 1, ids[0]! + 2]);
    expect(await ctx().tasks.get(ids[0]!)).toMatchObject({
      command: 'one',
      pool: a,
      cwd: '/w',
      max_retries: 2,
    });
    const second = await ctx().tasks.get(ids[1]!);
    expect(second).toMatchObject({ command: 'two', pool: a, cwd: '/w', timeout_ms: 5, submit_id: 's1' });
    expect(await ctx().tasks.get(ids[2]!)).toMatchObject({ command: 'three', pool: b, status: 1 });
    expect((await ctx().tasks.get(ids[0]!))?.timeout_ms).toBeUndefined();
    const one = await ctx().tasks.createMany([{ command: 'x', pool: a, cwd: '/w' }]);
    expect(await ctx().tasks.get(one[0]!)).toMatchObject({ command: 'x', pool: a, cwd: '/w' });
    await ctx().tasks.create({ command: 'y', pool: b });
    expect(await ctx().redis.hmget(ctx().keys.statsSubmitted, a, b)).toEqual(['3', '2']);
    expect((await ctx().tasks.events(ids[1]!)).map(e => e.reason)).toEqual(['submitted']);
  });
});

describe('the BullMQ job of a task', () => {
  it('carries the task id alone, on a queue whose events stream is capped', async () => {
    const pool = uniquePool();
    const [id] = await submitTasks(ctx(), [
      { command: 'echo a long command with arguments', pool, poolSpec: { name: pool }, cwd: '/tmp' },
    ]);
    const data = await ctx().redis.hget(ctx().keys.poolJob(pool, jobIdOf(id!)), 'data');
    expect(JSON.parse(data ?? 'null')).toEqual({ id });
    const meta = await ctx().redis.hget(`${ctx().keys.queuePrefix}:${pool}:meta`, 'opts.maxLenEvents');
    expect(Number(meta)).toBe(QUEUE_EVENTS_MAX_LEN);
  });
});

describe('endTask, the one end path', () => {
  it('writes the rc file of a task JTM ended, and none for a success', async () => {
    const dir = tempDir();
    const pool = uniquePool();
    const failed = await queuedTask(pool, { rc_file: join(dir, 'rc1') });
    const r = await endTask(ctx(), failed, {
      from: [TaskStatus.queued],
      to: TaskStatus.failed,
      reason: 'submit did not complete',
    });
    expect(r).toEqual({ done: true, previous: TaskStatus.queued });
    expect(readFileSync(join(dir, 'rc1'), 'utf8')).toBe('126\n');
    const ok = await queuedTask(pool, { rc_file: join(dir, 'rc2') });
    await ctx().tasks.start(ok, 'w1', 'h', 'r1');
    const s = await endTask(ctx(), ok, {
      fence: { workerId: 'w1', runToken: 'r1' },
      to: TaskStatus.success,
      reason: 'exit code 0',
      fields: { exit_code: 0 },
    });
    expect(s).toEqual({ done: true, previous: TaskStatus.running });
    expect(existsSync(join(dir, 'rc2'))).toBe(false);
    expect(await finished(pool)).toEqual({ [`${pool}:failed`]: '1', [`${pool}:success`]: '1' });
  });
});
