// TaskStore.create / createMany / transitionMany (the create-task, create-tasks and transition-many
// scripts: what submit writes), in-process, one fresh prefix per test.
import { describe } from 'vitest';

import { TaskStatus as S } from '../../src/tasks/status.js';
import { event, indexesOf, it, lastEvent, queuedTask, runningTask } from '../helpers/store.js';

const submitted = event(1_000, S.ready, S.queued, 'submitted');

describe.concurrent('create-task', () => {
  it('allocates the next id and writes a queued record, its event, its place in the active index', async ({
    ctx,
    expect,
  }) => {
    const a = await ctx.tasks.create(
      { command: 'echo a', pool: 'p', pool_spec: { name: 'p', cpu: 2 } },
      1_000,
    );
    const b = await ctx.tasks.create({ command: 'echo b', pool: 'q' }, 1_000);
    expect([a, b]).toEqual([1, 2]);
    expect(await ctx.tasks.get(a)).toEqual({
      id: 1,
      status: S.queued,
      status_name: 'queued',
      command: 'echo a',
      pool: 'p',
      pool_spec: { name: 'p', cpu: 2 },
      queued_at: 1_000,
      attempts: 0,
      max_retries: 0,
    });
    expect(await ctx.tasks.events(a)).toEqual([submitted]);
    expect(await ctx.redis.zscore(ctx.keys.activeTasks, String(a))).toBe('1000');
    expect(await ctx.redis.hgetall(ctx.keys.statsSubmitted)).toEqual({ p: '1', q: '1' });
  });
});

describe.concurrent('create-tasks (bulk submit)', () => {
  it('the first ids a Redis hands out after its run id changed (a restart, a failover) come past a margin, once (adversary 29 F1)', async ({
    ctx,
    expect,
  }) => {
    const runKey = ctx.keys.idCounterRunId;
    expect(await ctx.tasks.createMany([{ command: 'a', pool: 'p' }])).toEqual([1]);
    const runId = await ctx.redis.get(runKey);
    expect(runId).toMatch(/^[0-9a-f]{40}:[0-9a-f]{40}$/); // run id : replication id
    // What a restart or failover leaves: the key names the Redis that handed out the last ids.
    await ctx.redis.set(runKey, 'another-redis');
    expect(
      await ctx.tasks.createMany([
        { command: 'b', pool: 'p' },
        { command: 'c', pool: 'p' },
      ]),
    ).toEqual([1_000_002, 1_000_003]);
    expect(await ctx.redis.get(runKey)).toBe(runId);
    expect(await ctx.tasks.createMany([{ command: 'd', pool: 'p' }])).toEqual([1_000_004]);
    // create-task (one task) keeps the same guard.
    await ctx.redis.set(runKey, 'a-third-redis');
    expect(await ctx.tasks.create({ command: 'e', pool: 'p' })).toBe(2_000_005);
    expect(await ctx.redis.get(runKey)).toBe(runId);
  });

  it('consecutive ids after the last one, each record with its own fields, counted per pool', async ({
    ctx,
    expect,
  }) => {
    await ctx.tasks.create({ command: 'first', pool: 'p' }, 1_000);
    const ids = await ctx.tasks.createMany(
      [
        { command: 'a', pool: 'p', max_retries: 2 },
        { command: 'b', pool: 'q', cwd: '/w', stdout: '/w/out' },
        { command: 'c', pool: 'p' },
      ],
      1_000,
    );
    expect(ids).toEqual([2, 3, 4]);
    expect(await ctx.tasks.get(2)).toMatchObject({
      command: 'a',
      pool: 'p',
      max_retries: 2,
      status: S.queued,
    });
    expect(await ctx.tasks.get(3)).toMatchObject({ command: 'b', pool: 'q', cwd: '/w', stdout: '/w/out' });
    expect(await ctx.tasks.get(4)).toMatchObject({ command: 'c', queued_at: 1_000, attempts: 0 });
    expect((await ctx.tasks.get(4))?.cwd).toBeUndefined();
    for (const id of ids) {
      expect(await ctx.tasks.events(id)).toEqual([submitted]);
      expect(await ctx.redis.zscore(ctx.keys.activeTasks, String(id))).toBe('1000');
    }
    expect(await ctx.redis.hgetall(ctx.keys.statsSubmitted)).toEqual({ p: '3', q: '1' });
  });

  it('an empty list writes nothing and allocates no id', async ({ ctx, expect }) => {
    expect(await ctx.tasks.createMany([])).toEqual([]);
    expect(await ctx.redis.exists(ctx.keys.nextTaskId)).toBe(0);
  });

  it("a call with an earlier call's token (a retried submit's chunk) gets its ids and writes nothing; another token writes", async ({
    ctx,
    expect,
  }) => {
    const list = [
      { command: 'a', pool: 'p', submit_id: 's1' },
      { command: 'b', pool: 'p', submit_id: 's1' },
    ];
    const opts = { callToken: 's1:0', submitId: 's1' };
    expect(await ctx.tasks.createMany(list, 1_000, opts)).toEqual([1, 2]);
    expect(await ctx.tasks.createMany(list, 2_000, opts)).toEqual([1, 2]);
    expect(await ctx.redis.get(ctx.keys.nextTaskId)).toBe('2');
    expect((await ctx.tasks.get(1))?.queued_at).toBe(1_000);
    expect(await ctx.redis.hgetall(ctx.keys.statsSubmitted)).toEqual({ p: '2' });
    expect(await ctx.tasks.createMany(list, 2_000, { ...opts, callToken: 's1:1' })).toEqual([3, 4]);
  });

  it("no record of a submit is written once its commit key exists (a late copy of a try's call): refused", async ({
    ctx,
    expect,
  }) => {
    for (const value of ['3', '0']) {
      const submitId = `done-${value}`;
      await ctx.redis.set(ctx.keys.submit(submitId), value);
      await expect(
        ctx.tasks.createMany([{ command: 'a', pool: 'p', submit_id: submitId }], 1_000, {
          callToken: `${submitId}:0`,
          submitId,
        }),
      ).rejects.toThrow(/was committed or taken back/);
    }
    expect(await ctx.redis.exists(ctx.keys.nextTaskId, ctx.keys.task(1))).toBe(0);
  });
});

describe.concurrent('transition-many', () => {
  it('moves only the tasks in an allowed status, one event each, and says how many', async ({
    ctx,
    expect,
  }) => {
    const ids = await ctx.tasks.createMany(
      Array.from({ length: 3 }, () => ({ command: 'true', pool: 'p' })),
      1_000,
    );
    await ctx.tasks.transition(ids[2]!, [S.queued], S.failed, 'bad', {}, 1_500);
    expect(
      await ctx.tasks.transitionMany([...ids, 4242], [S.queued], S.pending, 'queued on pool', 2_000),
    ).toBe(2);
    for (const id of ids.slice(0, 2)) {
      expect(await ctx.tasks.get(id)).toMatchObject({ status: S.pending, reason: 'queued on pool' });
      expect(await lastEvent(ctx, id)).toEqual(event(2_000, S.queued, S.pending, 'queued on pool'));
      expect(await indexesOf(ctx, id)).toEqual({ active: true, onWorker: false, ttl: 'none' });
    }
    expect(await ctx.tasks.get(ids[2]!)).toMatchObject({ status: S.failed, reason: 'bad' });
    expect(await ctx.redis.exists(ctx.keys.task(4242))).toBe(0);
    expect(await ctx.tasks.transitionMany([], [S.queued], S.pending, 'x')).toBe(0);
  });

  it('to a final status: ended_at, out of the indexes (a running one off its worker), retention TTL', async ({
    ctx,
    expect,
  }) => {
    const queued = await queuedTask(ctx);
    const running = await queuedTask(ctx);
    await ctx.tasks.start(running, 'w1', 'h', 'r1');
    expect(
      await ctx.tasks.transitionMany([queued, running], [S.queued, S.running], S.failed, 'no queue', 3_000),
    ).toBe(2);
    for (const id of [queued, running]) {
      expect(await ctx.tasks.get(id)).toMatchObject({
        status: S.failed,
        reason: 'no queue',
        ended_at: 3_000,
      });
      expect(await indexesOf(ctx, id)).toEqual({ active: false, onWorker: false, ttl: 'set' });
      // The history is in the record, which has the TTL: no list of its own.
      expect(await ctx.redis.exists(ctx.keys.taskEvents(id))).toBe(0);
    }
  });

  it('leaving running without ending takes the task off its worker', async ({ ctx, expect }) => {
    const id = await runningTask(ctx);
    expect(await ctx.tasks.transitionMany([id], [S.running], S.pending, 'given back')).toBe(1);
    expect(await indexesOf(ctx, id)).toEqual({ active: true, onWorker: false, ttl: 'none' });
  });
});
