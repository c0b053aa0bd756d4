// Fixtures for in-process tests of the task store and its Lua scripts (test/store): each test gets its own
// context on a fresh key prefix, so tests share nothing and can run concurrently.
import { test } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import type { TaskEvent } from '../../src/store/task-history.js';
import { closeContext, openTestContext } from './context.js';
import { testEnv } from './env.js';

/** `it` with a `ctx` fixture: a context on a fresh prefix, closed after the test. */
export const it = test.extend<{ ctx: JtmContext }>({
  // vitest reads the fixtures a fixture needs from its first argument's destructuring: none here.
  // eslint-disable-next-line no-empty-pattern
  ctx: async ({}, use) => {
    const ctx = await openTestContext(testEnv());
    await use(ctx);
    await closeContext(ctx);
  },
});

/** A task record as submit writes it (status queued), its submit committed: startable by a worker. */
export async function queuedTask(
  ctx: JtmContext,
  fields: Record<string, unknown> = {},
  // The tests' clock: their transitions name small times (2_000, …), and a history keeps its entries in time
  // order, so a record queued at the real time would stamp them all with it.
  now = 1_000,
): Promise<number> {
  const sid = `s-${Math.random().toString(36).slice(2)}`;
  await ctx.redis.set(ctx.keys.submit(sid), 1);
  return ctx.tasks.create({ command: 'true', pool: 'p', max_retries: 1, submit_id: sid, ...fields }, now);
}

/** Sets or clears a worker's alive key, as its heartbeat and its death do. */
export async function setAlive(ctx: JtmContext, worker: string, on = true): Promise<void> {
  if (on) await ctx.redis.set(ctx.keys.workerAlive(worker), '1', 'PX', 60_000);
  else await ctx.redis.del(ctx.keys.workerAlive(worker));
}

/**
 * A task started by worker `worker` (execution `runToken`, host 'h'), alive or not (a dead worker's run is
 * what take-overs and recover act on).
 */
export async function runningTask(
  ctx: JtmContext,
  { fields = {}, worker = 'w1', runToken = 'r1', alive = false }: RunningTaskOptions = {},
): Promise<number> {
  const id = await queuedTask(ctx, fields);
  if (alive) await setAlive(ctx, worker);
  await ctx.tasks.start(id, worker, 'h', runToken, '', 1_500);
  return id;
}

export interface RunningTaskOptions {
  fields?: Record<string, unknown>;
  worker?: string;
  runToken?: string;
  alive?: boolean;
}

/**
 * The task as the status indexes see it: in tasks:active, in which worker's task set, and its record's TTL:
 * 'none' while it has not ended, 'set' once it has (the retention), 'no record' when there is none.
 */
export async function indexesOf(
  ctx: JtmContext,
  id: number,
  worker = 'w1',
): Promise<{ active: boolean; onWorker: boolean; ttl: 'none' | 'set' | 'no record' }> {
  const [score, member, ttlMs] = await Promise.all([
    ctx.redis.zscore(ctx.keys.activeTasks, String(id)),
    ctx.redis.sismember(ctx.keys.workerTasks(worker), String(id)),
    ctx.redis.pttl(ctx.keys.task(id)),
  ]);
  const ttl = ttlMs === -1 ? 'none' : ttlMs > 0 ? 'set' : 'no record';
  return { active: score !== null, onWorker: member === 1, ttl };
}

/** A history event: at `t`, from status `from` to `to`, for `reason`. */
export function event(t: number, from: number, to: number, reason: string): TaskEvent {
  return { t, from, to, reason };
}

/** The last event of the task's history. */
export async function lastEvent(ctx: JtmContext, id: number): Promise<TaskEvent | undefined> {
  return (await ctx.tasks.events(id)).at(-1);
}

/** How many tasks of `pool` were counted as finished with status `name` (the metrics counters). */
export async function finishedCount(ctx: JtmContext, pool: string, name: string): Promise<number> {
  return Number((await ctx.redis.hget(ctx.keys.statsFinished, `${pool}:${name}`)) ?? 0);
}
