import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { jobIdOf, taskIdOfJob } from '../tasks/job-data.js';
import { endTask } from '../tasks/end-task.js';
import { isFinal, TaskStatus } from '../tasks/status.js';
import { isCommitted } from '../tasks/submit-commit.js';
import { recoverTask, type RecoveryCounts } from './dead-workers.js';
import type { TaskJobs } from './task-jobs.js';

/** Records checked per sweep while a reconciliation pass runs: bounds the work of one sweep. */
export const RECONCILE_BATCH = 500;
/** A queued record younger than this may belong to a submit still in progress. */
export const SUBMIT_GRACE_MS = 60_000;
/** Jobs per pool looked at for orphans in one pass. */
const ORPHAN_SCAN = 1000;
/** A pending task's job looked for in its queue's lists once the task has waited this long. */
const STRANDED_AFTER_MS = 5 * 60_000;
/** Pending tasks per pool looked at for a stranded job in one pass. */
const STRANDED_MAX_PER_POOL = 10_000;
/** A queue whose lists hold more entries than this is not read whole (its stranded jobs wait for it to drain). */
const STRANDED_READ_MAX = 50_000;

export interface ReconcileCounts extends RecoveryCounts {
  submitFailed: number;
  submitRepaired: number;
  readded: number;
  poolGone: number;
  orphans: number;
}

export function emptyReconcileCounts(): ReconcileCounts {
  return {
    requeued: 0,
    lost: 0,
    terminated: 0,
    submitFailed: 0,
    submitRepaired: 0,
    readded: 0,
    poolGone: 0,
    orphans: 0,
  };
}

/**
 * Checks one batch of non-final records (from index `cursor` of the active index) against their queues.
 * Returns the next cursor, or undefined when the pass has reached the end.
 */
export async function reconcileBatch(
  ctx: JtmContext,
  jobs: TaskJobs,
  cursor: number,
  counts: ReconcileCounts,
  now: number,
  /** Pending tasks whose job exists, by pool, for the pass's look for stranded jobs (findStrandedJobs). */
  pendingWithJob?: Map<string, number[]>,
): Promise<number | undefined> {
  const ids = await ctx.redis.zrange(ctx.keys.activeTasks, cursor, cursor + RECONCILE_BATCH - 1);
  if (ids.length === 0) return undefined;
  const read = ctx.redis.pipeline();
  for (const id of ids)
    read.hmget(ctx.keys.task(id), 'status', 'pool', 'queued_at', 'worker_id', 'submit_id');
  const fields = ((await read.exec()) ?? []).map(([, v]) => (v ?? []) as (string | null)[]);
  const registered = new Set(await ctx.redis.smembers(ctx.keys.pools));

  // Second round trip: whether each job exists (and has finished) and whether each owner is alive.
  const probe = ctx.redis.pipeline();
  ids.forEach((id, i) => {
    const [status, pool, , worker] = fields[i] ?? [];
    const s = Number(status);
    if ((s === TaskStatus.queued || s === TaskStatus.pending) && pool)
      probe
        .hget(ctx.keys.poolJob(pool, jobIdOf(Number(id))), 'finishedOn')
        .exists(ctx.keys.poolJob(pool, jobIdOf(Number(id))));
    else if (s === TaskStatus.running)
      probe.exists(ctx.keys.workerAlive(worker ?? '')).zscore(ctx.keys.workers, worker ?? '');
    else probe.echo('').echo('');
  });
  const probed = ((await probe.exec()) ?? []).map(([, v]) => v);
  const gone: string[] = [];
  for (const [i, idText] of ids.entries()) {
    const id = Number(idText);
    const [status, pool, queuedAt, worker, submitId] = fields[i] ?? [];
    if (status === null || status === undefined || isFinal(Number(status))) {
      gone.push(idText);
      continue;
    }
    const s = Number(status);
    const finished = probed[2 * i] !== null && probed[2 * i] !== '';
    const jobExists = probed[2 * i + 1] === 1 && !finished;
    try {
      if (s === TaskStatus.queued && Number(queuedAt ?? 0) < now - SUBMIT_GRACE_MS) {
        // Only a committed submit's tasks may run (workers defer the others): the rest are failed, never run.
        const committed = !!submitId && isCommitted(await ctx.redis.get(ctx.keys.submit(submitId)));
        // A committed one is repaired to pending (a missing job is re-added by the pending rule next pass).
        if (committed) {
          const r = await ctx.tasks.transition(
            id,
            [TaskStatus.queued],
            TaskStatus.pending,
            'queued on pool (repaired: submit was interrupted after its commit)',
          );
          if (r.done) counts.submitRepaired++;
        } else {
          const r = await endTask(ctx, id, {
            from: [TaskStatus.queued],
            to: TaskStatus.failed,
            reason: 'submit did not complete',
          });
          if (r.done) {
            counts.submitFailed++;
            if (pool && jobExists) await jobs.end(pool, jobIdOf(id), 'submit did not complete');
          }
        }
      } else if (s === TaskStatus.pending && pool && jobExists) {
        if (Number(queuedAt ?? now) < now - STRANDED_AFTER_MS) {
          const list = pendingWithJob?.get(pool) ?? [];
          if (list.length < STRANDED_MAX_PER_POOL) list.push(id);
          pendingWithJob?.set(pool, list);
        }
      } else if (s === TaskStatus.pending && pool && !jobExists) {
        if (!registered.has(pool)) {
          const r = await endTask(ctx, id, {
            from: [TaskStatus.pending],
            to: TaskStatus.terminated,
            reason: `its pool ${pool} was removed`,
          });
          if (r.done) counts.poolGone++;
        } else if ((await ctx.tasks.status(id)) === TaskStatus.pending) {
          const did = await jobs.redeliver(pool, id);
          if (did === 'added') {
            counts.readded++;
            ctx.logger.warn({ task: id, pool }, 'pending task had no job: re-queued');
          }
        }
      } else if (s === TaskStatus.running && probed[2 * i] === 0 && probed[2 * i + 1] === null && worker) {
        // Only a worker gone from the index too: one still in it is the sweep's to bury, which may be waiting
        // for squeue to say whether its allocation is suspended (a stop, not a loss: suspension-check.ts).
        await recoverTask(ctx, jobs, id, worker, counts, now);
      }
    } catch (err) {
      ctx.logger.warn({ task: id, err: toError(err) }, 'reconciliation of a task failed');
    }
  }
  if (gone.length > 0) await ctx.redis.zrem(ctx.keys.activeTasks, ...gone);
  if (ids.length < RECONCILE_BATCH) return undefined;
  // Records this batch ended left the index too (finalize): the next batch starts after those that stayed,
  // else a batch of failed submits would make the pass skip as many records.
  const scores = await ctx.redis.zmscore(ctx.keys.activeTasks, ...ids);
  return cursor + scores.filter(v => v !== null).length;
}

/**
 * Jobs waiting in a pool queue whose task has no record, or an already final one: nothing would run them,
 * and they would keep the pool from expiring. Active ones are left to their worker (it skips them).
 */
export async function removeOrphanJobs(
  ctx: JtmContext,
  jobs: TaskJobs,
  pool: string,
  counts: ReconcileCounts,
): Promise<void> {
  const q = jobs.queue(pool);
  const jobIds = await q.getRanges(['wait', 'delayed', 'prioritized'], 0, ORPHAN_SCAN - 1);
  if (jobIds.length === 0) return;
  const read = ctx.redis.pipeline();
  const taskIds = jobIds.map(j => taskIdOfJob(j));
  for (const t of taskIds) read.hget(ctx.keys.task(t ?? 0), 'status');
  const statuses = ((await read.exec()) ?? []).map(([, v]) => v as string | null);
  for (const [i, jobId] of jobIds.entries()) {
    const status = taskIds[i] === undefined ? null : (statuses[i] ?? null);
    if (status !== null && !isFinal(Number(status))) continue;
    await jobs.end(pool, jobId, status === null ? 'no task record' : 'task already ended');
    counts.orphans++;
    ctx.logger.warn({ pool, job: jobId, task_status: status }, 'removed a job without a live task');
  }
}

/**
 * Jobs of pending tasks that are in none of their queue's lists (`wait`, `active`, `delayed`, …): BullMQ never
 * delivers them, and their tasks stayed pending (isalive yes) for good — a list lost to eviction or a DEL, where
 * the job hashes survived (adversary 24 F3: reconciliation took an existing hash for a live job). The lists are
 * read in one MULTI, so a job not in them at that instant is in none (only a re-add would put it back), and each
 * is re-added if its task is still pending. Only for tasks pending for STRANDED_AFTER_MS, and only where the
 * queue's lists are small enough to read whole (STRANDED_READ_MAX): a long backlog is left to drain first.
 */
export async function findStrandedJobs(
  ctx: JtmContext,
  jobs: TaskJobs,
  pool: string,
  ids: readonly number[],
  counts: ReconcileCounts,
): Promise<void> {
  if (ids.length === 0) return;
  const lists = ['wait', 'paused', 'active'] as const;
  const sets = ['delayed', 'prioritized', 'waiting-children'] as const;
  const k = (part: string): string => ctx.keys.poolQueueKey(pool, part);
  const sizes = ctx.redis.pipeline();
  for (const l of lists) sizes.llen(k(l));
  for (const z of sets) sizes.zcard(k(z));
  const total = ((await sizes.exec()) ?? []).reduce((n, [, v]) => n + Number(v ?? 0), 0);
  if (total > STRANDED_READ_MAX) return;
  const jobIds = ids.map(id => jobIdOf(id));
  const read = ctx.redis.multi();
  for (const l of lists) read.lrange(k(l), 0, -1);
  for (const z of sets) read.zrange(k(z), 0, -1);
  read.zmscore(k('completed'), ...jobIds);
  read.zmscore(k('failed'), ...jobIds);
  const replies = ((await read.exec()) ?? []).map(([err, v]) => {
    if (err) throw err;
    return v;
  });
  const listed = new Set((replies.slice(0, lists.length + sets.length) as string[][]).flat());
  const [completed, failed] = replies.slice(lists.length + sets.length) as (string | null)[][];
  for (const [i, jobId] of jobIds.entries()) {
    if (listed.has(jobId) || completed?.[i] != null || failed?.[i] != null) continue;
    const id = ids[i] as number;
    try {
      if ((await ctx.tasks.status(id)) !== TaskStatus.pending) continue;
      if ((await jobs.readdStranded(pool, id)) !== 'added') continue;
      counts.readded++;
      ctx.logger.warn({ task: id, pool }, "pending task's job was in none of its queue's lists: re-queued");
    } catch (err) {
      ctx.logger.warn({ task: id, err: toError(err) }, 'a stranded job could not be re-queued');
    }
  }
}
