import type { JtmContext } from '../context.js';

/**
 * Worker slots of Slurm allocations requested for a pool that have not started yet. The pool's Slurm
 * job registry (`pool:<name>:slurm-jobs`, job id → JSON {state, slots}) is kept by the manager.
 */
export async function countPendingSlurmSlots(ctx: JtmContext, pool?: string): Promise<number> {
  const pools = pool !== undefined ? [pool] : await ctx.redis.smembers(ctx.keys.pools);
  let total = 0;
  for (const p of pools) {
    const jobs = await ctx.redis.hvals(ctx.keys.poolSlurmJobs(p));
    for (const raw of jobs) {
      try {
        const j = JSON.parse(raw) as { state?: string; slots?: number };
        if (j.state === 'pending') total += j.slots ?? 0;
      } catch {
        // a malformed entry counts for nothing
      }
    }
  }
  return total;
}
