import type { JtmContext } from '../context.js';
import { scancel, splitJobKey, type SlurmJobState } from './slurm-commands.js';

/** One Slurm allocation of a pool, as kept in `pool:<name>:slurm-jobs` (job id → JSON). */
export interface PoolSlurmJob {
  state: SlurmJobState;
  slots: number;
  submitted_at: number;
  /** Batch script; its Slurm logs are next to it (`.out`, `.err`). */
  script?: string;
  /** Whether a worker of this allocation was ever seen alive. */
  connected?: boolean;
  /**
   * When a pass first found it running, connected once, without any live worker (epoch ms); cleared when one is
   * seen again. Set by passes, not derived from the last sighting: after a Redis outage, when no pass ran and no
   * worker could beat, the clock starts afresh (provision.ts cancelWorkerless).
   */
  workerless_since?: number;
  /** Set (not stored) on one the manager cancelled because Slurm held it after its batch launch failed. */
  launch_failed?: boolean;
}

export async function readPoolJobs(ctx: JtmContext, pool: string): Promise<Map<string, PoolSlurmJob>> {
  const raw = await ctx.redis.hgetall(ctx.keys.poolSlurmJobs(pool));
  const jobs = new Map<string, PoolSlurmJob>();
  for (const [id, json] of Object.entries(raw)) {
    try {
      jobs.set(id, JSON.parse(json) as PoolSlurmJob);
    } catch {
      // A malformed entry still names a job we may have to cancel: keep it as pending.
      jobs.set(id, { state: 'pending', slots: 0, submitted_at: 0 });
    }
  }
  return jobs;
}

export async function recordPoolJob(
  ctx: JtmContext,
  pool: string,
  id: string,
  job: PoolSlurmJob,
): Promise<void> {
  await ctx.redis.hset(ctx.keys.poolSlurmJobs(pool), id, JSON.stringify(job));
}

/** A job sbatch queued this recently is kept when an squeue does not list it (see syncPoolJobs). */
export const UNLISTED_GRACE_MS = 10_000;

/**
 * Brings the registry in line with a successful squeue: jobs Slurm no longer lists are dropped, the
 * others take Slurm's state. Returns the jobs dropped. Not dropped, though unlisted: a job sbatch queued less
 * than UNLISTED_GRACE_MS ago, and one whose workers are alive now (`liveJobIds`, their SLURM_JOB_ID): an squeue
 * that exits 0 with a short or empty answer (a broken or overloaded controller, a wrapper) made the manager drop
 * each allocation it had just booked and book another every pass — 13 for one task in 20 s, the one running it
 * among those no longer followed (adversary 25 F4). Such jobs are returned in `unlisted`, for a warning.
 */
export async function syncPoolJobs(
  ctx: JtmContext,
  pool: string,
  jobs: Map<string, PoolSlurmJob>,
  active: ReadonlyMap<string, SlurmJobState>,
  opts: { now?: number; liveJobIds?: ReadonlySet<string>; unlisted?: string[] } = {},
): Promise<Map<string, PoolSlurmJob>> {
  const gone = new Map<string, PoolSlurmJob>();
  const now = opts.now ?? Date.now();
  const multi = ctx.redis.multi();
  for (const [id, job] of jobs) {
    const state = active.get(id);
    if (
      state === undefined &&
      (now - job.submitted_at < UNLISTED_GRACE_MS || opts.liveJobIds?.has(splitJobKey(id).id))
    ) {
      opts.unlisted?.push(id);
    } else if (state === undefined) {
      gone.set(id, job);
      multi.hdel(ctx.keys.poolSlurmJobs(pool), id);
      jobs.delete(id);
    } else if (state !== job.state) {
      job.state = state;
      multi.hset(ctx.keys.poolSlurmJobs(pool), id, JSON.stringify(job));
    }
  }
  await multi.exec();
  return gone;
}

/**
 * Marks the pool's allocations that have a live worker as connected. `liveJobIds`: the workers'
 * SLURM_JOB_ID, which carries no cluster.
 */
export async function markConnected(
  ctx: JtmContext,
  pool: string,
  jobs: Map<string, PoolSlurmJob>,
  liveJobIds: ReadonlySet<string>,
): Promise<number> {
  let marked = 0;
  for (const [id, job] of jobs) {
    if (!liveJobIds.has(splitJobKey(id).id) || (job.connected && job.workerless_since === undefined))
      continue;
    if (!job.connected) marked++;
    job.connected = true;
    delete job.workerless_since;
    await ctx.redis.hset(ctx.keys.poolSlurmJobs(pool), id, JSON.stringify(job));
  }
  return marked;
}

/**
 * Cancels (scancel) the Slurm allocations of a pool but those whose id is in `keep` (workers' SLURM_JOB_ID);
 * resolves with the job keys cancelled.
 */
export async function cancelPoolAllocations(
  ctx: JtmContext,
  pool: string,
  keep: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  const jobs = await readPoolJobs(ctx, pool);
  const ids = [...jobs.keys()].filter(id => !keep.has(splitJobKey(id).id));
  if (ids.length === 0) return [];
  await scancel(ids);
  await ctx.redis.hdel(ctx.keys.poolSlurmJobs(pool), ...ids);
  await ctx.redis.del(ctx.keys.poolSlurmState(pool));
  ctx.logger.info({ pool, jobs: ids }, 'Slurm allocations cancelled');
  return ids;
}
