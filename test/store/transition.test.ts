// TaskStore.transition / transitionFenced / setFenced / reportLeftovers (the transition, fenced-set and
// leftovers-found scripts), in-process, one fresh prefix per test. The fence branches against concurrent
// executions are in test/reliability/fencing-scripts.test.ts; here: what each outcome writes.
import { describe } from 'vitest';

import { RECENT_ENDS_TRIM_EVERY, RECENT_ENDS_WINDOW_MS } from '../../src/redis/keys.js';
import { TaskStatus as S } from '../../src/tasks/status.js';
import { event, finishedCount, indexesOf, it, lastEvent, queuedTask, runningTask } from '../helpers/store.js';

const fence = { workerId: 'w1', runToken: 'r1' };

describe.concurrent('transition', () => {
  it('done: moves the status, sets the fields, writes one event; not final: still active', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx);
    expect(
      await ctx.tasks.transition(id, [S.ready, S.queued], S.pending, 'queued on pool', { cwd: '/x' }, 2_000),
    ).toEqual({ done: true, previous: S.queued });
    expect(await ctx.tasks.get(id)).toMatchObject({ status: S.pending, reason: 'queued on pool', cwd: '/x' });
    expect(await lastEvent(ctx, id)).toEqual(event(2_000, S.queued, S.pending, 'queued on pool'));
    expect(await indexesOf(ctx, id)).toEqual({ active: true, onWorker: false, ttl: 'none' });
  });

  it("an execution's own end sent again (its answer lost to a reset) is answered done, changing nothing; another execution's is not (adversary 31 F1)", async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx);
    const end = () =>
      ctx.tasks.transitionFenced(id, fence, S.timeout, 'timed out after 2 s', { exit_code: 124 }, 3_000);
    expect(await end()).toEqual({ done: true, previous: S.running });
    const after = await ctx.tasks.get(id);
    const events = await ctx.redis.hget(ctx.keys.task(id), 'history');
    // The resend: applied already. Before, {done: false, current: timeout}: the worker dropped the result and its rc.
    expect(await end()).toEqual({ done: true, previous: S.running });
    expect(await ctx.tasks.get(id)).toEqual(after);
    expect(await ctx.redis.hget(ctx.keys.task(id), 'history')).toBe(events);
    // Another status, or another execution (run token), is still refused.
    expect(await ctx.tasks.transitionFenced(id, fence, S.failed, 'exit code 1', {}, 3_000)).toEqual({
      done: false,
      current: S.timeout,
    });
    expect(
      await ctx.tasks.transitionFenced(id, { ...fence, runToken: 'r2' }, S.timeout, 'timed out', {}, 3_000),
    ).toEqual({ done: false, current: S.timeout });
  });

  it('a run given back to the queue, then killed before its next start: no start kept, no run time counted (adversary 37 F1)', async ({
    ctx,
    expect,
  }) => {
    // Ran 1.5 s → 5.5 s, given back, killed at 60 s: it was reported (and histogrammed) as a 58.5 s run.
    const id = await runningTask(ctx, { fields: { pool: 'f1' } });
    expect(
      await ctx.tasks.transitionFenced(
        id,
        fence,
        S.pending,
        'worker shut down before the task ended',
        {},
        5_500,
      ),
    ).toEqual({ done: true, previous: S.running });
    expect((await ctx.tasks.get(id))?.started_at).toBeUndefined();
    expect(await ctx.tasks.requestKill(id, 60_000)).toMatchObject({ kind: 'ended' });
    const rec = await ctx.tasks.get(id);
    // It had started once: not "killed before it started" (adversary 38 L1).
    expect(rec).toMatchObject({
      status: S.terminated,
      ended_at: 60_000,
      reason: 'killed while waiting to run again',
    });
    expect(rec?.started_at).toBeUndefined();
    expect(await finishedCount(ctx, 'f1', 'terminated')).toBe(1);
    expect(await ctx.redis.hgetall(ctx.keys.statsDuration)).toEqual({});
    expect(await ctx.redis.hgetall(ctx.keys.statsQueueWait)).toEqual({});
    // A record re-queued before started_at was cleared (an older version) still counts no run time at its end.
    const old = await runningTask(ctx, { fields: { pool: 'f1old' } });
    await ctx.tasks.transitionFenced(
      old,
      fence,
      S.pending,
      'worker shut down before the task ended',
      {},
      5_500,
    );
    await ctx.redis.hset(ctx.keys.task(old), 'started_at', '1500');
    await ctx.tasks.requestKill(old, 60_000);
    expect(await ctx.redis.hgetall(ctx.keys.statsDuration)).toEqual({});
  });

  it("a worker whose clock runs ahead does not empty its pool's recent-ends index (trimmed by Redis's clock)", async ({
    ctx,
    expect,
  }) => {
    const now = Date.now();
    const id = await queuedTask(ctx, { pool: 'fast-clock' }, now - 10_000);
    await ctx.tasks.start(id, 'w1', 'h', 'r1', '', now - 5_000);
    const recent = ctx.keys.poolRecentEnds('fast-clock');
    // The end brings the index to RECENT_ENDS_TRIM_EVERY entries: the end that trims it.
    const fresh = Array.from({ length: RECENT_ENDS_TRIM_EVERY - 1 }, (_, i) => [now - 1_000 - i, `f${i}`]);
    await ctx.redis.zadd(recent, ...fresh.flat());
    // Ended two hours "later" by the worker's clock: the window is an hour back from Redis's now, not from that.
    await ctx.tasks.transitionFenced(id, fence, S.success, 'exit code 0', { exit_code: 0 }, now + 7_200_000);
    expect(await ctx.redis.zcard(recent)).toBe(RECENT_ENDS_TRIM_EVERY);
    expect(await ctx.redis.zscore(recent, String(id))).toBe(String(now + 7_200_000));
  });

  it('the recent-ends index is trimmed to its hour by the end that brings it to a multiple of RECENT_ENDS_TRIM_EVERY, not before', async ({
    ctx,
    expect,
  }) => {
    const now = Date.now();
    const recent = ctx.keys.poolRecentEnds('trim');
    const stale = Array.from({ length: 10 }, (_, i) => [now - RECENT_ENDS_WINDOW_MS - 60_000 - i, `s${i}`]);
    const fresh = Array.from({ length: RECENT_ENDS_TRIM_EVERY - 12 }, (_, i) => [now - 1_000 - i, `f${i}`]);
    await ctx.redis.zadd(recent, ...stale.flat(), ...fresh.flat());
    const end = async (): Promise<number> => {
      const id = await queuedTask(ctx, { pool: 'trim' }, now - 10_000);
      await ctx.tasks.start(id, 'w1', 'h', 'r1', '', now - 5_000);
      await ctx.tasks.transitionFenced(id, fence, S.success, 'exit code 0', { exit_code: 0 }, now);
      return id;
    };
    // 63 entries after this end: not trimmed (the pool page asks for the hour by score: the stale ones never show).
    await end();
    expect(await ctx.redis.zcount(recent, '-inf', `(${now - RECENT_ENDS_WINDOW_MS}`)).toBe(10);
    // 64: trimmed, the hour's ends kept, with an expiry a window ahead.
    const last = await end();
    expect(await ctx.redis.zcount(recent, '-inf', `(${now - RECENT_ENDS_WINDOW_MS}`)).toBe(0);
    expect(await ctx.redis.zcard(recent)).toBe(RECENT_ENDS_TRIM_EVERY - 10);
    expect(await ctx.redis.zscore(recent, String(last))).toBe(String(now));
    expect(await ctx.redis.pttl(recent)).toBeGreaterThan(RECENT_ENDS_WINDOW_MS - 60_000);
  });

  it('final: a task with only one of its streams (live output, no resource samples) gets the TTL on it', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx);
    await ctx.tasks.start(id, 'w1', 'h', 'r1', '', 1_000);
    await ctx.redis.xadd(ctx.keys.taskOutput(id), '*', 'data', 'out');
    await ctx.tasks.transitionFenced(id, fence, S.success, 'exit code 0', { exit_code: 0 }, 3_000);
    expect(await ctx.redis.pttl(ctx.keys.taskOutput(id))).toBeGreaterThan(0);
    // The missing one is not created by the end.
    expect(await ctx.redis.exists(ctx.keys.taskResources(id))).toBe(0);
  });

  it('done, final: ended_at, out of every index, retention TTL on the record and its lists, counted once', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx);
    // A record written before the history field: its first events in a list, which expires with it too.
    await ctx.redis.hdel(ctx.keys.task(id), 'history');
    await ctx.redis.rpush(ctx.keys.taskEvents(id), '{}');
    await ctx.tasks.start(id, 'w1', 'h', 'r1', '', 1_000);
    await ctx.redis.rpush(ctx.keys.taskResources(id), 'sample');
    await ctx.redis.set(ctx.keys.taskOutput(id), 'out');
    expect(
      await ctx.tasks.transitionFenced(id, fence, S.failed, 'exit code 2', { exit_code: 2 }, 3_000),
    ).toEqual({ done: true, previous: S.running });
    expect(await ctx.tasks.get(id)).toMatchObject({ status: S.failed, exit_code: 2, ended_at: 3_000 });
    expect(await indexesOf(ctx, id)).toEqual({ active: false, onWorker: false, ttl: 'set' });
    const retention = ctx.config.taskRetentionMs;
    for (const key of [
      ctx.keys.task(id),
      ctx.keys.taskEvents(id),
      ctx.keys.taskResources(id),
      ctx.keys.taskOutput(id),
    ]) {
      const ttl = await ctx.redis.pttl(key);
      expect(ttl, key).toBeGreaterThan(retention - 60_000);
      expect(ttl, key).toBeLessThanOrEqual(retention);
    }
    expect(await finishedCount(ctx, 'p', 'failed')).toBe(1);
    // The duration histogram saw the run (2 s: bucket ≤ 5 s).
    expect(await ctx.redis.hget(ctx.keys.statsDuration, 'p:1')).toBe('1');
    // Nothing moves it on, even a caller whose `from` names the final status itself: the script refuses.
    expect(await ctx.tasks.transition(id, [S.running, S.pending], S.pending, 'again')).toEqual({
      done: false,
      current: S.failed,
    });
    expect(await ctx.tasks.transition(id, [S.failed], S.pending, 'leave a final status')).toEqual({
      done: false,
      current: S.failed,
    });
    expect(await ctx.tasks.transitionMany([id], [S.failed], S.success, 'bulk leave')).toBe(0);
    expect(await ctx.tasks.status(id)).toBe(S.failed);
  });

  it('done: leaving running without ending (given back) takes the task off its worker', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx);
    expect(await ctx.tasks.transitionFenced(id, fence, S.pending, 'worker stopping')).toEqual({
      done: true,
      previous: S.running,
    });
    expect(await indexesOf(ctx, id)).toEqual({ active: true, onWorker: false, ttl: 'none' });
    expect(await finishedCount(ctx, 'p', 'pending')).toBe(0);
  });

  it('not allowed: the current status is not in `from`, nothing written', async ({ ctx, expect }) => {
    const id = await queuedTask(ctx);
    const events = await ctx.tasks.events(id);
    expect(await ctx.tasks.transition(id, [S.running], S.success, 'x', { exit_code: 0 })).toEqual({
      done: false,
      current: S.queued,
    });
    expect(await ctx.tasks.get(id)).toMatchObject({ status: S.queued });
    expect((await ctx.tasks.get(id))?.exit_code).toBeUndefined();
    expect(await ctx.tasks.events(id)).toEqual(events);
  });

  it('fenced: the status allows it but another execution owns the task', async ({ ctx, expect }) => {
    const id = await runningTask(ctx, { runToken: 'r2' });
    expect(await ctx.tasks.transitionFenced(id, fence, S.success, 'late')).toEqual({
      done: false,
      current: S.running,
      fenced: true,
    });
    expect(await ctx.tasks.status(id)).toBe(S.running);
  });

  it('missing: no record, nothing created', async ({ ctx, expect }) => {
    expect(await ctx.tasks.transition(4242, [S.queued], S.failed, 'x')).toEqual({
      done: false,
      current: undefined,
    });
    expect(await ctx.redis.exists(ctx.keys.task(4242), ctx.keys.taskEvents(4242))).toBe(0);
  });
});

describe.concurrent('fenced-set', () => {
  it('sets fields while the execution owns the task; refuses after; no fields is a no-op', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx);
    expect(await ctx.tasks.setFenced(id, fence, { pid: 1 })).toBe(false);
    await ctx.tasks.start(id, 'w1', 'h', 'r1');
    expect(await ctx.tasks.setFenced(id, fence, { pid: 12, peak_rss_mb: 3 })).toBe(true);
    expect(await ctx.tasks.get(id)).toMatchObject({ pid: 12, peak_rss_mb: 3 });
    expect(await ctx.tasks.setFenced(id, { ...fence, runToken: 'other' }, { pid: 13 })).toBe(false);
    expect(await ctx.tasks.setFenced(id, fence, {})).toBe(true);
    expect(await ctx.tasks.get(id)).toMatchObject({ pid: 12 });
  });
});

describe.concurrent('note-on-record', () => {
  it('appends the pids and an event to the record’s history without changing the status', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx);
    await ctx.tasks.transitionFenced(id, fence, S.success, 'exit code 0', {}, 6_000);
    expect(await ctx.tasks.reportLeftovers(id, [10, 11], 'h1', 7_000)).toBe(true);
    expect(await ctx.tasks.reportLeftovers(id, [12], 'h1', 8_000)).toBe(true);
    expect(await ctx.tasks.get(id)).toMatchObject({ status: S.success, leftover_pids: '10,11,12' });
    expect((await ctx.tasks.events(id)).slice(-2)).toEqual([
      event(7_000, S.success, S.success, 'killed 2 leftover processes of a lost run on h1'),
      event(8_000, S.success, S.success, 'killed 1 leftover processes of a lost run on h1'),
    ]);
    // The history is a field of the record (which keeps its TTL): no key of its own.
    expect(await ctx.redis.exists(ctx.keys.taskEvents(id))).toBe(0);
    expect(await ctx.redis.pttl(ctx.keys.task(id))).toBeGreaterThan(0);
    expect(await ctx.tasks.reportLeftovers(4242, [1], 'h1')).toBe(false);
    expect(await ctx.redis.exists(ctx.keys.taskEvents(4242))).toBe(0);
  });

  it('rc not written: replaces rc_error (no append) and says so in the history; nothing for a missing record', async ({
    ctx,
    expect,
  }) => {
    const id = await runningTask(ctx);
    await ctx.tasks.transitionFenced(id, fence, S.timeout, 'time limit', {}, 6_000);
    expect(await ctx.tasks.noteRcNotWritten(id, 'could not write /a/rc as user u: EACCES', 7_000)).toBe(true);
    expect(await ctx.tasks.noteRcNotWritten(id, 'could not write /b/rc as user u: ENOENT', 8_000)).toBe(true);
    expect(await ctx.tasks.get(id)).toMatchObject({
      status: S.timeout,
      rc_error: 'could not write /b/rc as user u: ENOENT',
    });
    expect((await ctx.tasks.events(id)).at(-1)).toEqual(
      event(8_000, S.timeout, S.timeout, 'rc not written: could not write /b/rc as user u: ENOENT'),
    );
    expect(await ctx.tasks.noteRcNotWritten(4243, 'x')).toBe(false);
    expect(await ctx.redis.exists(ctx.keys.task(4243))).toBe(0);
  });
});
