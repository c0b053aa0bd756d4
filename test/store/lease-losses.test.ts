// lease-losses.ts and run-fencing.ts's classification, in-process: a run given back by self-fencing is counted
// against its task (lease_losses; past JTM_TASK_RETRIES + 1 the task ends lostconnection) unless Redis was the
// one silent while the worker kept asking (adversary 16 Q2).
import { describe, expect, it as plainIt } from 'vitest';

import { TaskStatus as S } from '../../src/tasks/status.js';
import {
  afterLeaseLoss,
  REDIS_SILENCE_LIMIT,
  UNSTARTED_GIVEBACK_LIMIT,
} from '../../src/worker/lease-losses.js';
import { redisWasSilent } from '../../src/worker/run-fencing.js';
import { it, queuedTask } from '../helpers/store.js';

const fenced = {
  kind: 'requeue' as const,
  reason: 'worker lost its lease on Redis: run stopped before a takeover',
  leftovers: [],
  fenced: true as const,
};

describe('a run given back by self-fencing', () => {
  it('is counted, and past JTM_TASK_RETRIES + 1 give-backs ends the task lostconnection (a worker always late)', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, { max_retries: 0 });
    const first = await afterLeaseLoss(ctx, id, fenced);
    expect(first).toEqual({ outcome: fenced, fields: { lease_losses: 1 } });
    await ctx.redis.hset(ctx.keys.task(id), 'lease_losses', 1);
    const second = await afterLeaseLoss(ctx, id, fenced);
    expect(second.fields).toEqual({ lease_losses: 2 });
    expect(second.outcome).toMatchObject({ kind: 'final', status: S.lostconnection });
    expect((second.outcome as { reason: string }).reason).toMatch(/lost its lease on Redis 2 times/);
  });

  it('is not counted when Redis was silent while the worker kept asking: given back, said so', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, { max_retries: 0, lease_losses: 5 });
    const r = await afterLeaseLoss(ctx, id, { ...fenced, redisSilentMs: 4_250 });
    expect(r.fields).toEqual({ redis_silences: 1 });
    expect(r.outcome).toMatchObject({ kind: 'requeue', fenced: true });
    expect((r.outcome as { reason: string }).reason).toBe(
      'worker lost its lease on Redis: run stopped before a takeover (Redis did not answer for 4.3 s; not counted against the task)',
    );
  });
});

describe('give-backs for Redis’s silence', () => {
  it('a count in the record that is not a count is taken as 0, not NaN (adversary 28 F3: ended lostconnection "NaN times")', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, { max_retries: 0 });
    await ctx.redis.hset(ctx.keys.task(id), 'redis_silences', 'NaN');
    const r = await afterLeaseLoss(ctx, id, { ...fenced, redisSilentMs: 1_000 });
    expect(r.fields).toEqual({ redis_silences: 1 });
    expect(r.outcome).toMatchObject({ kind: 'requeue' });
  });

  it('are bounded all the same: past REDIS_SILENCE_LIMIT the task ends lostconnection (review: a loop for ever)', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, { max_retries: 0, redis_silences: REDIS_SILENCE_LIMIT });
    const r = await afterLeaseLoss(ctx, id, { ...fenced, redisSilentMs: 1_500 });
    expect(r.fields).toEqual({ redis_silences: REDIS_SILENCE_LIMIT + 1 });
    expect(r.outcome).toMatchObject({ kind: 'final', status: S.lostconnection });
    expect((r.outcome as { reason: string }).reason).toMatch(
      new RegExp(`Redis did not answer its worker ${REDIS_SILENCE_LIMIT + 1} times`),
    );
  });
});

describe('a run fenced before its command started (adversary 26 F3)', () => {
  const unstarted = {
    ...fenced,
    reason: 'worker lost its lease on Redis: task not started, so that a takeover cannot overlap it',
    unstarted: true as const,
  };

  it('is counted apart, never as a lease loss or a silence: given back past JTM_TASK_RETRIES + 1, said so', async ({
    ctx,
    expect,
  }) => {
    // One lease loss already, none left (retries 0): before, this give-back ended the task lostconnection.
    const id = await queuedTask(ctx, { max_retries: 0, lease_losses: 1, unstarted_givebacks: 4 });
    const r = await afterLeaseLoss(ctx, id, unstarted);
    expect(r.fields).toEqual({ unstarted_givebacks: 5 });
    expect(r.outcome).toMatchObject({ kind: 'requeue', fenced: true });
    expect((r.outcome as { reason: string }).reason).toBe(
      'worker lost its lease on Redis: task not started, so that a takeover cannot overlap it (nothing ran: not counted against the task)',
    );
    // Redis silent meanwhile: still not a silence of a run (nothing ran), but the reason says it.
    const silent = await afterLeaseLoss(ctx, id, { ...unstarted, redisSilentMs: 2_040 });
    expect(silent.fields).toEqual({ unstarted_givebacks: 5 });
    expect((silent.outcome as { reason: string }).reason).toMatch(
      /\(Redis did not answer for 2\.0 s; nothing ran: not counted against the task\)$/,
    );
  });

  it('is bounded all the same: past UNSTARTED_GIVEBACK_LIMIT the task ends lostconnection (a worker whose lease lapses at every claim)', async ({
    ctx,
    expect,
  }) => {
    const id = await queuedTask(ctx, { max_retries: 0, unstarted_givebacks: UNSTARTED_GIVEBACK_LIMIT });
    const r = await afterLeaseLoss(ctx, id, unstarted);
    expect(r.fields).toEqual({ unstarted_givebacks: UNSTARTED_GIVEBACK_LIMIT + 1 });
    expect(r.outcome).toMatchObject({ kind: 'final', status: S.lostconnection });
    expect((r.outcome as { reason: string }).reason).toMatch(
      new RegExp(
        `between a claim and its command's start ${UNSTARTED_GIVEBACK_LIMIT + 1} times \\(those runs never started it\\)`,
      ),
    );
  });

  it('is never bounded tighter than a run that started: JTM_TASK_RETRIES + 1 when that is higher', async ({
    ctx,
    expect,
  }) => {
    const retries = UNSTARTED_GIVEBACK_LIMIT + 5;
    const id = await queuedTask(ctx, { max_retries: retries, unstarted_givebacks: retries });
    const r = await afterLeaseLoss(ctx, id, unstarted);
    expect(r.fields).toEqual({ unstarted_givebacks: retries + 1 });
    expect(r.outcome).toMatchObject({ kind: 'requeue' });
  });
});

describe('whose silence a lost lease was', () => {
  plainIt.each([
    // Redis paused: the worker's checks every ~125 ms, a lease's worth of silence.
    [4_000, 130, true],
    [1_000, 250, true],
    // A loaded worker whose checks came up to a second apart in a 4 s silence: still Redis's.
    [4_000, 1_000, true],
    // A loaded node: one check 593 ms late in a 1.2 s BUSY episode (a lease loss charged in a full run).
    [1_231, 593, true],
    // The worker itself frozen or starved for most of the silence.
    [1_200, 800, false],
    [4_000, 3_900, false],
    // Too short to be an outage (a lease too short for its Redis).
    [400, 50, false],
  ])('silent %i ms, longest gap %i ms: Redis %s', (silent, gap, redis) => {
    expect(redisWasSilent(silent, gap)).toBe(redis);
  });
  plainIt.each([
    // The shortest lease (1.5 s): fenced after ~1 s of silence less a round trip (999 ms was the worker's).
    [999, 125, 1_500, true],
    [760, 125, 1_500, true],
    [700, 125, 1_500, false],
    // A 6 s lease (the default): 1 s as before.
    [999, 125, 6_000, false],
  ])('silent %i ms, longest gap %i ms, lease %i ms: Redis %s', (silent, gap, lease, redis) => {
    expect(redisWasSilent(silent, gap, lease)).toBe(redis);
  });
});
