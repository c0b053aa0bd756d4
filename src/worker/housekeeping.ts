import type { JtmContext } from '../context.js';
import type { Logger } from '../logger.js';
import { startLeftoverSweeps } from './leftovers.js';
import type { LiveState } from './live-state.js';
import { FIRST_PRUNE_DELAY_MS, PRUNE_INTERVAL_MS, pruneLogDir, taskRecordsExist } from './log-dir-prune.js';

/** How long after its start a worker first sweeps the node for leftovers of lost runs. */
const FIRST_LEFTOVER_SWEEP_DELAY_MS = 1000;

export interface HousekeepingParts {
  ctx: JtmContext;
  workerId: string;
  host: string;
  log: Logger;
  /** Where the timers go (stop() clears them) and the sweeps and pruning under way are recorded. */
  live: LiveState;
  /** The run tokens of this worker's executions: their processes are not leftovers. */
  ownTokens: () => string[];
}

/**
 * A worker's housekeeping of its node, besides its tasks: the processes of lost runs on this host (their worker
 * and pty host died together), killed and reported; and the task files whose records have expired.
 */
export function startHousekeeping(p: HousekeepingParts): void {
  const { ctx, live, log } = p;
  // A sweep reads the environment of every process on the node, synchronously: the first one comes after the
  // first fetch and task start, not before them.
  live.timers.push(
    setTimeout(() => {
      if (live.stopping) return;
      live.leftovers = startLeftoverSweeps(ctx, {
        workerId: p.workerId,
        host: p.host,
        logger: log,
        ownTokens: p.ownTokens,
      });
    }, FIRST_LEFTOVER_SWEEP_DELAY_MS),
  );
  // Task files whose records have expired: once a minute after the start, then hourly; by one worker of a host
  // per interval (a lease per host and log dir: workers of one node share their log dir).
  const prune = (): void => {
    if (live.stopping || live.pruning) return;
    live.pruning = (async () => {
      const lease = ctx.keys.logDirPruneLease(p.host, ctx.config.logDir);
      if ((await ctx.redis.set(lease, p.workerId, 'PX', PRUNE_INTERVAL_MS - 60_000, 'NX')) === null) return;
      await pruneLogDir(
        ctx.config.logDir,
        ctx.config.taskRetentionMs,
        ids => taskRecordsExist(ctx, ids),
        log,
      );
    })()
      .catch(err => log.warn({ err }, 'log dir not pruned'))
      .finally(() => (live.pruning = undefined));
  };
  live.timers.push(setTimeout(prune, FIRST_PRUNE_DELAY_MS), setInterval(prune, PRUNE_INTERVAL_MS));
}
