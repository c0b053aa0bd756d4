import { workflowPoolBase } from '../pool-spec.js';
import type { RedisClient } from '../redis/connection.js';
import type { Keys } from '../redis/keys.js';
import { runScript } from '../redis/run-script.js';
import { DURATION_BUCKETS, FOLD_POOL_STATS, WAIT_BUCKETS } from '../redis/scripts.js';
import { TaskStatus } from '../task-status.js';

/**
 * Counters of tasks submitted and finished, kept in Redis so that any number of managers and dashboards
 * export the same totals. They are written by the Lua scripts that create or end a task (src/redis/scripts.ts:
 * create-task(s) count `stats:submitted`; every path to a final status goes through `finalize`, which counts
 * `stats:finished` and the histograms), in the same atomic step as the change: each task is counted once, and
 * no extra round trip is spent on it.
 *
 * Histograms: `<pool>:<i>` counts the observations in bucket i alone (the smallest bound ≥ value;
 * i = bounds.length for +Inf), `<pool>:sum_ms` their sum in milliseconds (an integer); the exporter accumulates,
 * and adds `<pool>:sum` (seconds), what an earlier version counted.
 */
export { DURATION_BUCKETS, WAIT_BUCKETS };

/**
 * A per-workflow pool's label once the pool is gone (expired or removed): `<pool>_*`, where the counts of all
 * the ended workflows of `<pool>` add up. Without it every workflow (`shared: 0`, the Cromwell stanza's default)
 * left about 30 series in /metrics and their fields in the stats hashes for ever: with 100 workflows a day,
 * a million series a year. `*` is in no pool name, so the label is no live pool's. Undefined: not a
 * per-workflow pool (a named pool's counts stay under its name: there are few).
 */
export function endedWorkflowsLabel(pool: string): string | undefined {
  const base = workflowPoolBase(pool);
  return base === undefined ? undefined : `${base}_*`;
}

/** The stats fields of one pool, per stats hash (the suffixes after the pool name). */
const POOL_STAT_SUFFIXES = {
  submitted: [''],
  finished: Object.keys(TaskStatus).map(name => `:${name}`),
  duration: [...DURATION_BUCKETS.map((_, i) => `:${i}`), `:${DURATION_BUCKETS.length}`, ':sum_ms', ':sum'],
  queueWait: [...WAIT_BUCKETS.map((_, i) => `:${i}`), `:${WAIT_BUCKETS.length}`, ':sum_ms', ':sum'],
};

/**
 * Moves the counts of a per-workflow pool that is gone to its ended-workflows label (endedWorkflowsLabel),
 * atomically; nothing for another pool. `redis`, `keys`: the pool's shard. Returns the number of fields moved.
 */
export async function foldPoolStats(redis: RedisClient, keys: Keys, pool: string): Promise<number> {
  const label = endedWorkflowsLabel(pool);
  if (label === undefined) return 0;
  const k = keys;
  const groups = [
    [k.statsSubmitted, POOL_STAT_SUFFIXES.submitted],
    [k.statsFinished, POOL_STAT_SUFFIXES.finished],
    [k.statsDuration, POOL_STAT_SUFFIXES.duration],
    [k.statsQueueWait, POOL_STAT_SUFFIXES.queueWait],
  ] as const;
  const args = groups.flatMap(([, suffixes]) => [String(suffixes.length), ...suffixes]);
  return Number(
    await runScript(
      redis,
      FOLD_POOL_STATS,
      groups.map(([key]) => key),
      [pool, label, ...args],
    ),
  );
}
