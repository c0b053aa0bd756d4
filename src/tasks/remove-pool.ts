import { setTimeout as sleep } from 'node:timers/promises';

import { forPool, type JtmContext } from '../context.js';
import { PoolNotFoundError, toError } from '../errors.js';
import { cancelPoolAllocations } from '../slurm/slurm-jobs.js';
import { KILL_CAUSE_POOL_REMOVED } from './rc-file.js';
import { writeRcIfJtmEnded } from './end-task.js';
import { openPoolQueue } from './pool-queue.js';
import { isFinal, TaskStatus } from './status.js';
import { validatePoolName } from '../pool-spec.js';
import { sendToPool, sendToWorker } from '../control/worker-control.js';
import { UNFINISHED_STATES } from '../pools/list-pools.js';
import { repliesOrThrow } from '../redis/replies.js';
import { refuseReplica } from '../redis/replica-check.js';
import { countSlotsByState, listLiveWorkers } from '../pools/live-workers.js';

export interface RemovePoolResult {
  pool: string;
  /** Waiting tasks ended as terminated. */
  terminated: number[];
  /** Running tasks killed (--force); they end terminated with rc 75 written for Cromwell. */
  killed: number[];
  /** Running tasks left to finish on their workers (no --force); their workers exit after them. */
  left_running: number[];
  slurm_jobs_cancelled: string[];
}

const SCAN_BATCH = 1000;

/**
 * Tears a pool down: every waiting task ends terminated, its workers are told to stop, its Slurm
 * allocations are cancelled, and its queue and registry entry are removed. Without `force` a running task
 * finishes on its worker, which takes no new task and exits once its running tasks have ended (their
 * allocations are left to end with them). With `force` running tasks are killed first; they end
 * terminated and, as JTM ended them, get the documented rc (75) for Cromwell, like the waiting ones.
 */
export async function removePool(
  anyShard: JtmContext,
  pool: string,
  opts: { force: boolean; waitMs: number },
): Promise<RemovePoolResult> {
  validatePoolName(pool);
  const ctx = forPool(anyShard, pool);
  const known = await ctx.redis.sismember(ctx.keys.pools, pool);
  const tasks = await tasksOfPool(ctx, pool);
  // A removal that failed half way (Redis lost, a command refused) has removed the registry entry first: what it
  // left (waiting tasks, a queue with jobs) is still the pool's, and a second removal finishes it. Before, the
  // second answered "unknown pool" and the waiting tasks stayed pending with no worker, for ever.
  // A pool only a live worker names (started ahead of the work) is a pool too: its workers are stopped.
  if (
    !known &&
    tasks.length === 0 &&
    !(await queueHasJobs(ctx, pool)) &&
    (await liveSlots(ctx, pool)) === 0
  ) {
    // A replica's "no such pool" is Redis unavailable (refuseReplica: adversary 34 H2).
    await refuseReplica(ctx);
    throw new PoolNotFoundError(pool);
  }
  const reason = `pool ${pool} removed`;
  const result: RemovePoolResult = {
    pool,
    terminated: [],
    killed: [],
    left_running: [],
    slurm_jobs_cancelled: [],
  };
  // The registry entry goes first, so that no expiry or provisioning acts on the pool while it is torn down.
  await ctx.redis.multi().srem(ctx.keys.pools, pool).del(ctx.keys.pool(pool)).exec();

  const waiting: number[] = [];
  for (const { id, status } of tasks) {
    if (status === TaskStatus.running) {
      if (!opts.force) {
        result.left_running.push(id);
        continue;
      }
      // Recorded before the kill request, so that whoever records the end (the worker, or this for a dead
      // worker) knows JTM ended the task and writes its rc. A user kill already requested stays a user kill.
      await markPoolRemovalKill(ctx, id);
      const k = await ctx.tasks.requestKill(id);
      if (k.kind === 'signal-worker') {
        await sendToWorker(ctx, k.workerId, { type: 'kill', task: id });
        result.killed.push(id);
      } else if (k.kind === 'worker-dead' || k.kind === 'ended') {
        result.terminated.push(id);
        await writeRcIfJtmEnded(ctx, id, TaskStatus.terminated);
      }
      continue;
    }
    waiting.push(id);
  }
  await terminateWaiting(ctx, waiting, reason, result);
  // Killed tasks end on their workers; stop the workers only then, so that a stop does not give them back.
  if (result.killed.length > 0) await waitUntilFinal(ctx, result.killed, opts.waitMs);
  // Without force the workers finish what they run (no grace period, no new task), then exit.
  const stopping = await listLiveWorkers(ctx, pool);
  await sendToPool(ctx, pool, opts.force ? { type: 'stop', force: true } : { type: 'stop', finish: true });
  // Marked stopping now, not at their next beat: a pool only its workers named is gone once removed (a second
  // removal right after said "removed" again while they had not yet read the stop).
  if (stopping.length > 0) {
    const mark = ctx.redis.multi();
    for (const w of stopping) mark.hset(ctx.keys.worker(w.id), 'state', 'stopping');
    await mark.exec();
  }
  try {
    // Allocations whose workers still run a task are left to end when those workers exit.
    const keep = opts.force ? new Set<string>() : await allocationsRunning(ctx, result.left_running);
    result.slurm_jobs_cancelled = await cancelPoolAllocations(ctx, pool, keep);
  } catch (err) {
    ctx.logger.warn({ pool, err: toError(err) }, 'could not cancel the Slurm allocations of the pool');
  }
  const queue = openPoolQueue(ctx, pool);
  try {
    await queue.obliterate({ force: true });
  } finally {
    await queue.close();
  }
  await ctx.redis.del(ctx.keys.poolSlurmJobs(pool), ctx.keys.poolSlurmState(pool));
  ctx.logger.info(
    {
      pool,
      terminated: result.terminated.length,
      killed: result.killed.length,
      running: result.left_running.length,
    },
    'pool removed',
  );
  return result;
}

const WAITING_STATUSES = [TaskStatus.ready, TaskStatus.queued, TaskStatus.pending];
/** Concurrent rc-file decisions (a read and maybe a file write each): well below a process's descriptors. */
const RC_CONCURRENCY = 64;

/**
 * Ends the pool's waiting tasks as terminated, SCAN_BATCH per script run (one run per task took 74 s for
 * 50,000 tasks), then reads back which of them this removal ended (a task a worker claimed meanwhile is left
 * running; one a user killed meanwhile keeps its kill) and writes their rc, as endTask does for one task.
 */
async function terminateWaiting(
  ctx: JtmContext,
  ids: readonly number[],
  reason: string,
  result: RemovePoolResult,
): Promise<void> {
  for (let i = 0; i < ids.length; i += SCAN_BATCH) {
    const chunk = ids.slice(i, i + SCAN_BATCH);
    await ctx.tasks.transitionMany(chunk, WAITING_STATUSES, TaskStatus.terminated, reason);
    const read = ctx.redis.pipeline();
    for (const id of chunk) read.hmget(ctx.keys.task(id), 'status', 'reason');
    const res = repliesOrThrow(await read.exec(), 'pipeline');
    const ended: number[] = [];
    chunk.forEach((id, n) => {
      const [s, why] = (res[n]?.[1] ?? []) as (string | null)[];
      if (Number(s) === TaskStatus.terminated && why === reason) ended.push(id);
      else if (Number(s) === TaskStatus.running) result.left_running.push(id);
    });
    result.terminated.push(...ended);
    // Said in the record as for the running ones it kills (markPoolRemovalKill): what a site script or the
    // report tells JTM's own ends by; the waiting ones had their rc 75 but no cause (adversary 11 L6).
    if (ended.length > 0) {
      const cause = ctx.redis.pipeline();
      for (const id of ended) cause.hset(ctx.keys.task(id), 'kill_cause', KILL_CAUSE_POOL_REMOVED);
      repliesOrThrow(await cause.exec(), 'pipeline');
    }
    for (let j = 0; j < ended.length; j += RC_CONCURRENCY) {
      await Promise.all(
        ended.slice(j, j + RC_CONCURRENCY).map(id => writeRcIfJtmEnded(ctx, id, TaskStatus.terminated)),
      );
    }
  }
}

/**
 * Whether the pool's queue still holds a job to run (finished ones do not count: a pool that expired keeps its
 * last completed jobs, and stays unknown).
 */
async function queueHasJobs(ctx: JtmContext, pool: string): Promise<boolean> {
  const queue = openPoolQueue(ctx, pool);
  try {
    const counts = await queue.getJobCounts(...UNFINISHED_STATES);
    return Object.values(counts).some(n => n > 0);
  } finally {
    await queue.close();
  }
}

/** Non-final tasks of the pool, from the active index (what the pool's queue may not fully show). */
async function tasksOfPool(ctx: JtmContext, pool: string): Promise<{ id: number; status: number }[]> {
  const out: { id: number; status: number }[] = [];
  for (let start = 0; ; start += SCAN_BATCH) {
    const ids = await ctx.redis.zrange(ctx.keys.activeTasks, start, start + SCAN_BATCH - 1);
    if (ids.length === 0) break;
    const read = ctx.redis.pipeline();
    for (const id of ids) read.hmget(ctx.keys.task(id), 'pool', 'status');
    const res = repliesOrThrow(await read.exec(), 'pipeline');
    ids.forEach((id, i) => {
      const [p, s] = (res[i]?.[1] ?? []) as (string | null)[];
      if (p === pool && s !== null && s !== undefined && !isFinal(Number(s)))
        out.push({ id: Number(id), status: Number(s) });
    });
    if (ids.length < SCAN_BATCH) break;
  }
  return out;
}

async function waitUntilFinal(ctx: JtmContext, ids: readonly number[], waitMs: number): Promise<void> {
  const deadline = Date.now() + waitMs;
  let left = [...ids];
  while (left.length > 0 && Date.now() < deadline) {
    const statuses = await Promise.all(left.map(id => ctx.tasks.status(id)));
    left = left.filter((_, i) => {
      const s = statuses[i];
      return s !== undefined && !isFinal(s);
    });
    if (left.length > 0) await sleep(100);
  }
}

async function markPoolRemovalKill(ctx: JtmContext, id: number): Promise<void> {
  const key = ctx.keys.task(id);
  if ((await ctx.redis.hget(key, 'kill_requested')) !== '1') {
    await ctx.redis.hset(key, 'kill_cause', KILL_CAUSE_POOL_REMOVED);
  }
}

/** Slurm job ids of the allocations whose live workers run one of `ids`. */
async function allocationsRunning(ctx: JtmContext, ids: readonly number[]): Promise<Set<string>> {
  const keep = new Set<string>();
  if (ids.length === 0) return keep;
  const running = new Set(ids);
  for (const w of await listLiveWorkers(ctx)) {
    if (w.slurm_job_id > 0 && w.running.some(t => running.has(t))) keep.add(String(w.slurm_job_id));
  }
  return keep;
}

/** Slots of the pool's live workers that are not stopping: serving, draining or paused. */
async function liveSlots(ctx: JtmContext, pool: string): Promise<number> {
  const { serving, draining, paused } = await countSlotsByState(ctx, pool);
  return serving + draining + paused;
}
