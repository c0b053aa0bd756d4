import type { JtmContext } from '../context.js';
import type { SlurmJobState } from './slurm-commands.js';

/** One Slurm allocation of a pool, as kept in `pool:<name>:slurm-jobs` (job id → JSON). */
export interface PoolSlurmJob {
  state: SlurmJobState;
  slots: number;
  submitted_at: number;
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

/**
 * Brings the registry in line with a successful squeue: jobs Slurm no longer lists are dropped, the
 * others take Slurm's state. Returns the ids dropped.
 */
export async function syncPoolJobs(
  ctx: JtmContext,
  pool: string,
  jobs: Map<string, PoolSlurmJob>,
  active: ReadonlyMap<string, SlurmJobState>,
): Promise<string[]> {
  const gone: string[] = [];
  const multi = ctx.redis.multi();
  for (const [id, job] of jobs) {
    const state = active.get(id);
    if (state === undefined) {
      gone.push(id);
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
