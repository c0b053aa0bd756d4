import type { JtmContext } from '../context.js';
import { endedWorkflowsLabel, foldPoolStats } from '../store/task-counters.js';

/**
 * Folds the counts of per-workflow pools that are gone (expired, removed, or from before this existed) into
 * their ended-workflows label (task-counters.ts: endedWorkflowsLabel), so that /metrics and the stats hashes
 * grow with the number of pools in use, not with every workflow ever run. A task of a removed pool that ends
 * later counts under the pool's own name again, and is folded at the next pass. Returns the pools folded.
 */
export async function foldEndedWorkflowStats(ctx: JtmContext): Promise<string[]> {
  const [submitted, finished, live] = await Promise.all([
    ctx.redis.hkeys(ctx.keys.statsSubmitted),
    ctx.redis.hkeys(ctx.keys.statsFinished),
    ctx.redis.smembers(ctx.keys.pools),
  ]);
  const registered = new Set(live);
  const pools = new Set([...submitted, ...finished.map(f => f.slice(0, f.lastIndexOf(':')))]);
  const folded: string[] = [];
  for (const pool of pools) {
    if (registered.has(pool) || endedWorkflowsLabel(pool) === undefined) continue;
    if ((await foldPoolStats(ctx.redis, ctx.keys, pool)) > 0) folded.push(pool);
  }
  return folded;
}
