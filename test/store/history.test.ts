// The task history as one field of the record (scripts.ts: entry, appendHistory; src/store/task-history.ts), in-process on a
// fresh prefix per test: what every script appends, what the reader derives (default reasons, the final
// reason, the worker and host of a start), escaping, the cap, no key of its own, and a record that stays a
// listpack through a whole lifecycle.
import { describe } from 'vitest';

import { HISTORY_MAX_BYTES } from '../../src/redis/scripts.js';
import { decodeHistory } from '../../src/store/task-history.js';
import { TaskStatus as S } from '../../src/tasks/status.js';
import { it, lastEvent, queuedTask, setAlive } from '../helpers/store.js';

describe.concurrent('task history', () => {
  it('a whole lifecycle: four entries in the record, no history key, the record a listpack', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, {}, 1_000);
    await ctx.tasks.start(id, 'worker-1', 'node-1', 'r1', 'lock', 1_500);
    await ctx.tasks.transitionFenced(
      id,
      { workerId: 'worker-1', runToken: 'r1' },
      S.success,
      'exit code 0',
      {
        exit_code: 0,
      },
      4_000,
    );
    expect(await ctx.tasks.events(id)).toEqual([
      { t: 1_000, from: S.ready, to: S.queued, reason: 'submitted' },
      { t: 1_500, from: S.queued, to: S.pending, reason: 'queued on pool' },
      { t: 1_500, from: S.pending, to: S.running, reason: 'started on worker-1@node-1' },
      { t: 4_000, from: S.running, to: S.success, reason: 'exit code 0' },
    ]);
    expect(await ctx.redis.hget(ctx.keys.task(id), 'history')).toBe('0,0,1;500,1,2;500,2,3,~;3000,3,4');
    expect(await ctx.redis.exists(ctx.keys.taskEvents(id))).toBe(0);
    expect(await ctx.redis.object('ENCODING', ctx.keys.task(id))).toBe('listpack');
    expect(await ctx.tasks.get(id)).not.toHaveProperty('history');
    const details = await ctx.tasks.details(id);
    expect(details?.events).toEqual(await ctx.tasks.events(id));
    expect(details?.record.status_name).toBe('success');
  });

  it('a restart writes the earlier start out in full; the latest names the record’s worker', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, { max_retries: 2 }, 1_000);
    await ctx.tasks.start(id, 'w1', 'h1', 'r1', '', 2_000);
    await setAlive(ctx, 'w1', false);
    await ctx.tasks.start(id, 'w2', 'h2', 'r2', '', 3_000);
    const events = await ctx.tasks.events(id);
    expect(events.filter(e => e.to === S.running).map(e => e.reason)).toEqual([
      'started on w1@h1',
      'restarted: worker w1 was lost on w2@h2',
    ]);
    await ctx.redis.set(ctx.keys.taskOutput(id), 'first run');
    await ctx.tasks.recover(id, 'w2', 'r2', 4_000);
    await ctx.tasks.start(id, 'w3', 'h3', 'r3', '', 5_000);
    const again = await ctx.tasks.events(id);
    expect(again.filter(e => e.to === S.running).map(e => e.reason)).toEqual([
      'started on w1@h1',
      'restarted: worker w1 was lost on w2@h2',
      'started on w3@h3',
    ]);
    expect(again.find(e => e.from === S.running && e.to === S.pending)?.reason).toBe(
      're-queued: worker w2 was lost (2 of 2 retries used)',
    );
    // A later run starts with no live output of an earlier one (start-task drops it).
    expect(await ctx.redis.exists(ctx.keys.taskOutput(id))).toBe(0);
  });

  it('reasons with the separators and the escape characters come back as written', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, {}, 1_000);
    const odd = 'a;b,c %25 ~d~';
    await ctx.tasks.transition(id, [S.queued], S.pending, odd, {}, 2_000);
    await ctx.tasks.reportLeftovers(id, [12, 13], 'h;x', 2_500);
    await ctx.tasks.transition(id, [S.pending], S.failed, `${odd} end`, {}, 3_000);
    const events = await ctx.tasks.events(id);
    expect(events.map(e => e.reason)).toEqual([
      'submitted',
      odd,
      'killed 2 leftover processes of a lost run on h;x',
      `${odd} end`,
    ]);
    expect(events.map(e => e.t)).toEqual([1_000, 2_000, 2_500, 3_000]);
  });

  it('kill: the request and the end, each once', async ({ ctx, expect }) => {
    const id = await queuedTask(ctx, {}, 1_000);
    await ctx.tasks.start(id, 'w1', 'h1', 'r1', '', 2_000);
    await setAlive(ctx, 'w1');
    await ctx.tasks.requestKill(id, 3_000);
    await ctx.tasks.transitionFenced(
      id,
      { workerId: 'w1', runToken: 'r1' },
      S.terminated,
      'killed',
      {},
      4_000,
    );
    expect((await ctx.tasks.events(id)).slice(-2)).toEqual([
      { t: 3_000, from: S.running, to: S.running, reason: 'kill requested' },
      { t: 4_000, from: S.running, to: S.terminated, reason: 'killed' },
    ]);
  });

  it('is capped by length, oldest entries first', async ({ ctx, expect }) => {
    const id = await queuedTask(ctx, {}, 1_000);
    const long = 'x'.repeat(200);
    for (let i = 0; i < 40; i++) {
      await ctx.tasks.transition(
        id,
        [S.queued, S.pending],
        i % 2 ? S.queued : S.pending,
        long,
        {},
        2_000 + i,
      );
    }
    const h = (await ctx.redis.hget(ctx.keys.task(id), 'history')) ?? '';
    expect(h.length).toBeLessThanOrEqual(HISTORY_MAX_BYTES);
    const events = await ctx.tasks.events(id);
    expect(events.at(-1)).toMatchObject({ t: 2_039, reason: long });
    expect(events.every(e => e.reason === long || e.reason === 'submitted')).toBe(true);
  });

  it('stays in time order when a writer’s clock is behind the last entry (a fast start after the submit’s mark, another host)', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, {}, 1_000);
    // The submit marks it pending at 1,005; a worker that read its clock at 1,003 starts it right after.
    await ctx.tasks.transitionMany([id], [S.queued], S.pending, 'queued on pool', 1_005);
    await ctx.tasks.start(id, 'w1', 'h1', 'r1', '', 1_003);
    // A worker on a host whose clock is a second behind ends it.
    await ctx.tasks.transitionFenced(
      id,
      { workerId: 'w1', runToken: 'r1' },
      S.success,
      'exit code 0',
      {},
      400,
    );
    const times = (await ctx.tasks.events(id)).map(e => e.t);
    expect(times).toEqual([1_000, 1_005, 1_005, 1_005]);
  });

  it('a record written before the field: its history list is read first', async ({ ctx, expect }) => {
    const id = await queuedTask(ctx, {}, 1_000);
    await ctx.redis.rpush(
      ctx.keys.taskEvents(id),
      JSON.stringify({ t: 500, from: S.ready, to: S.queued, reason: 'old list' }),
    );
    await ctx.tasks.transition(id, [S.queued], S.pending, 'queued on pool', {}, 2_000);
    expect((await ctx.tasks.events(id)).map(e => e.reason)).toContain('old list');
    expect((await lastEvent(ctx, id))?.reason).toBe('queued on pool');
  });
});

describe('decodeHistory', () => {
  it('derives what the writer left out from the record', ({ expect }) => {
    expect(
      decodeHistory({
        history: '0,0,1;10,1,2;20,2,3,~;30,3,-2',
        queued_at: '100',
        worker_id: 'w',
        host: 'h',
        reason: 'exit code 3',
      }),
    ).toEqual([
      { t: 100, from: 0, to: 1, reason: 'submitted' },
      { t: 110, from: 1, to: 2, reason: 'queued on pool' },
      { t: 120, from: 2, to: 3, reason: 'started on w@h' },
      { t: 130, from: 3, to: -2, reason: 'exit code 3' },
    ]);
    expect(decodeHistory({})).toEqual([]);
  });
});
