import type { JtmContext } from '../context.js';
import { writeRcIfJtmEnded } from '../tasks/end-task.js';
import { jobIdOf } from '../tasks/job-data.js';
import { TaskStatus } from '../tasks/status.js';
import type { TaskJobs } from './task-jobs.js';

export interface RecoveryCounts {
  requeued: number;
  lost: number;
  terminated: number;
}

export function emptyCounts(): RecoveryCounts {
  return { requeued: 0, lost: 0, terminated: 0 };
}

/**
 * Workers whose last beat is older than the liveness window: one range query on the `workers` index,
 * then only those whose alive key is really gone (a beat may land between the two reads). A beat is stamped
 * with its worker's clock: one from the future (a node whose clock runs ahead of the manager's by more than
 * the window) is looked at too, or that worker's death would never be in the stale range.
 */
export async function findDeadWorkers(ctx: JtmContext, now: number): Promise<string[]> {
  const window = ctx.config.heartbeatIntervalMs * ctx.config.missedBeats;
  const [old, ahead] = await Promise.all([
    ctx.redis.zrangebyscore(ctx.keys.workers, '-inf', `(${now - window}`, 'LIMIT', 0, 1000),
    ctx.redis.zrangebyscore(ctx.keys.workers, `(${now + window}`, '+inf', 'LIMIT', 0, 1000),
  ]);
  const stale = [...old, ...ahead];
  if (stale.length === 0) return [];
  const pipeline = ctx.redis.pipeline();
  for (const id of stale) pipeline.exists(ctx.keys.workerAlive(id));
  const res = (await pipeline.exec()) ?? [];
  return stale.filter((_, i) => {
    const [err, n] = res[i] ?? [];
    return !err && n === 0;
  });
}

/**
 * Ends the run of one task on a dead worker. Both steps are fenced on what was read, so a manager that
 * slept between the read and the writes (or acted on a stale index) changes nothing:
 * - the job is put back (or failed) with the dead execution's own BullMQ lock token: BullMQ moves it only
 *   while that very lock holds, never a job another worker has fetched since (once the lock has lapsed,
 *   BullMQ's stalled check of a live worker puts the job back instead);
 * - then the record changes through recover-task, only if the same execution (run token) still runs on the
 *   same worker and that worker's alive key is still gone.
 * The job goes first: a manager killed in between leaves the record running on the dead worker, which stays
 * in the index, so the next sweep finishes the work; a worker that fetches the re-delivered job first takes
 * the task over by the same rule (start-task).
 */
export async function recoverTask(
  ctx: JtmContext,
  jobs: TaskJobs,
  taskId: number,
  deadWorker: string,
  counts: RecoveryCounts,
  now = Date.now(),
  /** Why the worker is silent when that is a stop, not a loss: its Slurm allocation suspended (no retry spent). */
  stop = '',
): Promise<void> {
  const [status, owner, losses, maxRetries, kill, pool, runToken, jobToken] = await ctx.redis.hmget(
    ctx.keys.task(taskId),
    'status',
    'worker_id',
    'losses',
    'max_retries',
    'kill_requested',
    'pool',
    'run_token',
    'job_token',
  );
  const running = Number(status) === TaskStatus.running && owner === deadWorker;
  if (running && pool && jobToken) {
    const retry = kill !== '1' && (stop !== '' || Number(losses ?? 0) + 1 <= Number(maxRetries ?? 0));
    if (retry) await jobs.redeliver(pool, taskId, jobToken);
    else await jobs.end(pool, jobIdOf(taskId), 'worker lost', jobToken);
  }
  const res = await ctx.tasks.recover(taskId, deadWorker, running ? (runToken ?? '') : '', now, stop);
  if (res.kind !== 'recovered') return;
  const log = { task: taskId, worker: deadWorker };
  if (res.status === TaskStatus.pending) {
    counts.requeued++;
    ctx.logger.info(log, 'task re-queued: its worker was lost');
    return;
  }
  if (res.status === TaskStatus.lostconnection) counts.lost++;
  else counts.terminated++;
  ctx.logger.warn({ ...log, status: res.status }, 'task ended: its worker was lost');
  await writeRcIfJtmEnded(ctx, taskId, res.status);
}

/**
 * Recovers every task of a dead worker, then drops the worker from the index (last, so a crash retries).
 * `suspendedJob`: the worker's Slurm allocation is suspended: its tasks are given back without a retry spent.
 */
export async function buryWorker(
  ctx: JtmContext,
  jobs: TaskJobs,
  workerId: string,
  counts: RecoveryCounts,
  now: number,
  suspendedJob?: string,
): Promise<void> {
  const ids = await ctx.redis.smembers(ctx.keys.workerTasks(workerId));
  const stop = suspendedJob ? `worker ${workerId}'s Slurm allocation ${suspendedJob} was suspended` : '';
  for (const id of ids) await recoverTask(ctx, jobs, Number(id), workerId, counts, now, stop);
  await ctx.redis
    .multi()
    .zrem(ctx.keys.workers, workerId)
    .del(ctx.keys.workerTasks(workerId))
    .hset(ctx.keys.worker(workerId), 'state', 'dead', 'running', '')
    .pexpire(ctx.keys.worker(workerId), 86_400_000)
    .exec();
  ctx.logger.warn(
    { worker: workerId, tasks: ids.length, ...(suspendedJob ? { suspendedSlurmJob: suspendedJob } : {}) },
    suspendedJob ? 'worker declared dead: its Slurm allocation is suspended' : 'worker declared dead',
  );
}
