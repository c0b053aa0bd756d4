import type { JtmContext } from '../context.js';
import { readPoolJobs } from '../slurm/slurm-jobs.js';

/**
 * Worker slots of Slurm allocations requested for a pool that have not started yet. The pool's Slurm
 * job registry (`pool:<name>:slurm-jobs`) is kept by the manager; a malformed entry counts for nothing.
 */
export async function countPendingSlurmSlots(ctx: JtmContext, pool?: string): Promise<number> {
  const pools = pool !== undefined ? [pool] : await ctx.redis.smembers(ctx.keys.pools);
  let total = 0;
  for (const p of pools) {
    for (const j of (await readPoolJobs(ctx, p)).values()) {
      if (j.state === 'pending') total += j.slots;
    }
  }
  return total;
}
