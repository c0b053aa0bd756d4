import { Cluster } from 'ioredis';

import type { Config } from './config.js';
import { ClusterPrefixError, isConnectionError, ShardCountMismatchError } from './errors.js';
import type { Logger } from './logger.js';
import {
  closeConnection,
  createConnection,
  refusedBeforeReady,
  type ConnectionRole,
  type RedisClient,
} from './redis/connection.js';
import { Keys } from './redis/keys.js';
import { retryWhileUnreachable } from './redis/retry-unreachable.js';
import { watchSilence } from './redis/silence-watch.js';
import { hasHashTag, keysFor, shardOfPool, shardOfTask } from './redis/shards.js';
import { TaskStore } from './store/task-store.js';

/**
 * What every operation needs: configuration, logger, one Redis connection, key names and the task store.
 * `keys` and `tasks` are those of one shard (docs/scaling.md): the context a command opens is shard 0's;
 * forPool/forTask/allShards give the one that holds a pool or a task, or every one, on the same connection.
 */
export interface JtmContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly redis: RedisClient;
  readonly keys: Keys;
  readonly tasks: TaskStore;
}

/**
 * Where an operation that may reconnect gets its context (a CLI command's session, the programmatic API's
 * client): the context, opened on first use, and a way to drop a failed connection so that the next
 * context() connects again (what the retries of isalive, kill and submit do between tries).
 */
export interface ContextSource {
  context(): Promise<JtmContext>;
  resetContext(): Promise<void>;
}

/**
 * Runs `fn` on the source's context. A failure to connect, or a command that failed for want of Redis, drops the
 * connection (resetContext), so that a retry, or the next call of a long-lived client, connects again instead
 * of using a connection that has ended.
 */
export async function withContext<T>(src: ContextSource, fn: (ctx: JtmContext) => Promise<T>): Promise<T> {
  let ctx: JtmContext;
  try {
    ctx = await src.context();
  } catch (err) {
    await src.resetContext();
    throw err;
  }
  try {
    return await fn(ctx);
  } catch (err) {
    if (isConnectionError(err)) await src.resetContext();
    throw err;
  }
}

/**
 * withContext, tried again on a new connection while Redis is unreachable, for `retryMs` (retryWhileUnreachable):
 * what isalive, kill and status do about a transient reset.
 */
export function withContextRetrying<T>(
  src: ContextSource,
  fn: (ctx: JtmContext) => Promise<T>,
  retryMs: number,
  alsoRetry?: (err: unknown) => boolean,
): Promise<T> {
  return retryWhileUnreachable(() => withContext(src, fn), retryMs, alsoRetry);
}

export async function openContext(
  config: Config,
  logger: Logger,
  role: ConnectionRole,
  opts: { longLived?: boolean } = {},
): Promise<JtmContext> {
  const redis = await createConnection(config, role, role === 'worker' ? logger : undefined, opts);
  try {
    // With several shards each namespace gets a tag of its own (shardPrefix); with one, the prefix is the namespace.
    if (redis instanceof Cluster && config.shards === 1 && !hasHashTag(config.prefix))
      throw new ClusterPrefixError(config.prefix);
    await Promise.race([checkShardCount(redis, config), refusedBeforeReady(redis)]);
  } catch (err) {
    await closeConnection(redis);
    throw err;
  }
  // A command's connection (not the API's, whose client watches while its calls wait): a Redis stopped after the
  // connect (SIGSTOP, a hung host, a partition) kept `jtm isalive`, `status`, `submit`, `kill` waiting for as long
  // as it stayed stopped; now the commands waiting fail as Redis unreachable after JTM_CONNECT_TIMEOUT with no
  // byte from it, and isalive, kill and submit try again within their retry windows (JTM_*_RETRY).
  if (role === 'client' && !opts.longLived) {
    watches.set(redis, watchSilence(redis, config.connectTimeoutMs, config.connectTimeoutMs * 2));
  }
  return shardContext({ config, logger, redis }, 0);
}

const watches = new WeakMap<RedisClient, () => void>();

export async function closeContext(ctx: JtmContext): Promise<void> {
  watches.get(ctx.redis)?.();
  await closeConnection(ctx.redis);
}

// The contexts of every shard of one connection, built once (a TaskStore per shard, not per call).
const shardsOf = new WeakMap<RedisClient, JtmContext[]>();

function shardContext(base: Pick<JtmContext, 'config' | 'logger' | 'redis'>, k: number): JtmContext {
  let list = shardsOf.get(base.redis);
  if (!list) shardsOf.set(base.redis, (list = []));
  let ctx = list[k];
  if (!ctx) {
    const keys = keysFor(base.config.prefix, k, base.config.shards);
    ctx = { ...base, keys, tasks: new TaskStore(base.redis, keys, base.config, k) };
    list[k] = ctx;
  }
  return ctx;
}

/** The context of shard k (the same connection). With one shard, the context itself. */
export function forShard(ctx: JtmContext, k: number): JtmContext {
  if (ctx.config.shards === 1) return ctx;
  return shardContext(ctx, k);
}

/** The context of the shard that holds a pool (its queue, records, workers and tasks). */
export function forPool(ctx: JtmContext, pool: string): JtmContext {
  return forShard(ctx, shardOfPool(pool, ctx.config.shards));
}

/** The context of the shard that holds a task: its id says which (id mod shards). */
export function forTask(ctx: JtmContext, id: number): JtmContext {
  return forShard(ctx, shardOfTask(id, ctx.config.shards));
}

/**
 * `items` grouped by the shard of the task each names (`idOf`), in order: what reads or writes several tasks
 * sends one pipeline per shard (a Cluster pipeline's keys must share a node).
 */
export function byTaskShard<T>(
  ctx: JtmContext,
  items: readonly T[],
  idOf: (item: T) => number,
): Map<JtmContext, T[]> {
  const out = new Map<JtmContext, T[]>();
  for (const item of items) {
    const shard = forTask(ctx, idOf(item));
    const list = out.get(shard);
    if (list) list.push(item);
    else out.set(shard, [item]);
  }
  return out;
}

/** The context of every shard, for what spans the site (pool lists, sweeps, reports, metrics). */
export function allShards(ctx: JtmContext): JtmContext[] {
  return Array.from({ length: ctx.config.shards }, (_, k) => forShard(ctx, k));
}

/**
 * Refuses a process whose JTM_SHARDS differs from the site's (its ids would name the wrong shards). Read
 * only (commands that fail or only read write nothing): the count is written by the first submit
 * (recordShardCount). A site that ran unsharded before (an id counter under JTM_PREFIX, no count) counts as
 * one shard.
 */
async function checkShardCount(redis: RedisClient, config: Config): Promise<void> {
  const base = new Keys(config.prefix);
  const stored = await redis.get(base.shardCount);
  if (stored !== null) {
    if (Number(stored) !== config.shards) throw new ShardCountMismatchError(Number(stored), config.shards);
    knowShardCount(redis);
  } else if (config.shards > 1 && (await redis.exists(base.nextTaskId)) === 1) {
    throw new ShardCountMismatchError(1, config.shards);
  }
}

/**
 * Connections that found the site's shard count stored, equal to theirs: a submit on them does not store it again.
 * Each submit did (SET NX, then a GET when it was there: two round trips of the five a one-task submit waited
 * for). Forgotten when the connection closes: the Redis it reconnects to may have lost its data meanwhile.
 */
const shardCountKnown = new WeakSet<RedisClient>();

function knowShardCount(redis: RedisClient): void {
  if (shardCountKnown.has(redis)) return;
  shardCountKnown.add(redis);
  redis.once('close', () => shardCountKnown.delete(redis));
}

/**
 * Stores the site's shard count before a submit allocates ids (SET NX: the first submit of the site sets it,
 * and of two first submits with different counts, the second is refused).
 */
export async function recordShardCount(ctx: JtmContext): Promise<void> {
  const { config, redis } = ctx;
  if (shardCountKnown.has(redis)) return;
  const key = new Keys(config.prefix).shardCount;
  if ((await redis.set(key, config.shards, 'NX')) !== 'OK') {
    const stored = Number(await redis.get(key));
    if (stored !== config.shards) throw new ShardCountMismatchError(stored, config.shards);
  }
  knowShardCount(redis);
}
