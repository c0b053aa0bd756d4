import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { listLiveWorkers } from '../pools/live-workers.js';
import { lastEndOf, UNFINISHED_STATES } from '../pools/list-pools.js';
import { runScript } from '../redis/run-script.js';
import { DROP_POOL_IF_UNTOUCHED } from '../redis/scripts.js';
import { readPoolJobs } from '../slurm/slurm-jobs.js';
import type { TaskJobs } from './task-jobs.js';

/**
 * Removes pools (manual, dynamic and per-workflow `<pool>_<uuid>` alike) that have had no live worker, no
 * unfinished job, no Slurm allocation in flight and no activity for `poolIdleMs`. Cheap when nothing is
 * idle: one SMEMBERS and one pipelined read of the activity times.
 */
export async function expireIdlePools(ctx: JtmContext, jobs: TaskJobs, now: number): Promise<string[]> {
  const names = await ctx.redis.smembers(ctx.keys.pools);
  if (names.length === 0) return [];
  const read = ctx.redis.pipeline();
  for (const n of names) read.hget(ctx.keys.pool(n), 'last_activity');
  const times = ((await read.exec()) ?? []).map(([, v]) => v as string | null);
  const idle = names
    .map((name, i) => ({ name, last: times[i] ?? null }))
    .filter(p => p.last === null || Number(p.last) < now - ctx.config.poolIdleMs);
  if (idle.length === 0) return [];
  const busy = new Set((await listLiveWorkers(ctx)).map(w => w.pool));
  const expired: string[] = [];
  for (const { name, last } of idle) {
    if (busy.has(name)) continue;
    try {
      // Activity is a task's end too, not only a submit: a pool whose workers ran for longer than the idle
      // time after its last submit was expirable the moment its last worker left (adversary 11 L7).
      if (((await lastEndOf(ctx, name)) ?? 0) >= now - ctx.config.poolIdleMs) continue;
      const allocations = [...(await readPoolJobs(ctx, name)).values()];
      // A held or suspended allocation too: released or resumed, its workers serve the pool.
      const inFlight = allocations.some(j => ['pending', 'running', 'held', 'suspended'].includes(j.state));
      if (inFlight) continue;
      const q = jobs.queue(name);
      const counts = await q.getJobCounts(...UNFINISHED_STATES);
      if (Object.values(counts).some(n => n > 0)) continue;
      const dropped = await runScript(
        ctx.redis,
        DROP_POOL_IF_UNTOUCHED,
        [ctx.keys.pool(name), ctx.keys.pools, ctx.keys.poolSlurmJobs(name)],
        [last ?? '', name],
      );
      if (dropped !== 1) continue;
      // A submit racing with this finds no registry entry and writes a new one; its job survives unless it
      // lands in the instant before obliterate, and then reconciliation queues it again.
      try {
        await q.obliterate({ force: false });
      } catch (err) {
        await q.resume().catch(() => {});
        ctx.logger.debug({ pool: name, err: toError(err) }, 'queue not obliterated');
      }
      expired.push(name);
      ctx.logger.info({ pool: name }, 'idle pool expired');
    } catch (err) {
      ctx.logger.warn({ pool: name, err: toError(err) }, 'pool expiry failed');
    }
  }
  return expired;
}
