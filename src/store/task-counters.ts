import type { RedisClient } from '../redis/connection.js';
import type { Keys } from '../redis/keys.js';
import { isFinal, statusName } from '../task-status.js';

/**
 * Counters of tasks submitted and finished, kept in Redis (HINCRBY) so that any number of managers and
 * dashboards export the same totals. TaskStore calls them right after the compare-and-set that created or
 * ended a task succeeded, so each task is counted once; they are not in the same script as the change
 * (a crash between the two loses one count, never adds one).
 */
export async function countSubmitted(
  redis: RedisClient,
  keys: Keys,
  pools: readonly string[],
): Promise<void> {
  const perPool = new Map<string, number>();
  for (const p of pools) perPool.set(p, (perPool.get(p) ?? 0) + 1);
  if (perPool.size === 0) return;
  const pipe = redis.pipeline();
  for (const [pool, n] of perPool) pipe.hincrby(keys.statsSubmitted, pool, n);
  await pipe.exec();
}

/** Upper bounds (seconds) of the task duration and queue-wait histograms kept in Redis. */
export const DURATION_BUCKETS = [1, 5, 15, 60, 300, 900, 3600, 14400, 43200, 86400] as const;
export const WAIT_BUCKETS = [0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 14400] as const;

/**
 * Histogram in a Redis hash: `<pool>:<i>` counts the observations in bucket i alone (the smallest bound
 * ≥ value; i = bounds.length for +Inf), `<pool>:sum` their sum; the exporter accumulates.
 */
function observe(
  pipe: ReturnType<RedisClient['pipeline']>,
  key: string,
  pool: string,
  bounds: readonly number[],
  v: number,
): void {
  let i = bounds.findIndex(b => v <= b);
  if (i < 0) i = bounds.length;
  pipe.hincrby(key, `${pool}:${i}`, 1);
  pipe.hincrbyfloat(key, `${pool}:sum`, v);
}

/**
 * Counts task `id` as finished with `status` (a no-op for a status that is not final), and records its
 * duration and queue wait when it ran.
 */
export async function countFinished(
  redis: RedisClient,
  keys: Keys,
  id: number,
  status: number,
): Promise<void> {
  if (!isFinal(status)) return;
  const [pool, queued, started, ended] = await redis.hmget(
    keys.task(id),
    'pool',
    'queued_at',
    'started_at',
    'ended_at',
  );
  if (pool === null || pool === undefined) return;
  const pipe = redis.pipeline();
  pipe.hincrby(keys.statsFinished, `${pool}:${statusName(status)}`, 1);
  if (started && ended)
    observe(
      pipe,
      keys.statsDuration,
      pool,
      DURATION_BUCKETS,
      Math.max(0, Number(ended) - Number(started)) / 1000,
    );
  if (started && queued)
    observe(
      pipe,
      keys.statsQueueWait,
      pool,
      WAIT_BUCKETS,
      Math.max(0, Number(started) - Number(queued)) / 1000,
    );
  await pipe.exec();
}
