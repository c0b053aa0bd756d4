import { Cluster } from 'ioredis';

import type { Config } from '../config.js';
import { isConnectionError, RedisUnavailableError } from '../errors.js';
import type { RedisClient } from './connection.js';
import { redisLocation } from './location.js';

/**
 * Refuses an answer that something does not exist (a task record, a pool) when it came from a replica: a REDIS_URL
 * naming a node that a failover made a replica, re-syncing from its master, answered reads from whatever it held
 * (empty during a full sync): `isalive` said `no` (exit 1, "dead" to Cromwell) for a live task, `status`
 * invalidtask, `kill` "no task", `pools` "no pools" (adversary 34 H2). Such a Redis is unavailable to JTM
 * (REDIS_UNAVAILABLE, exit 255, isalive `unknown`), named so.
 *
 * Asked only on that negative path (ROLE, one round trip), so a normal answer keeps its single one. A server
 * that cannot be asked (an ACL user without ROLE, a renamed command) counts as a master: the answer stands, as
 * before. A Cluster needs no check: its replicas redirect reads of a key to its master (MOVED).
 * `unlessSynced`: a replica whose link to its master is up (ROLE's `connected`) passes.
 */
export async function refuseReplica(
  ctx: { redis: RedisClient; config: Config },
  opts: { unlessSynced?: boolean } = {},
): Promise<void> {
  const { redis, config } = ctx;
  if (redis instanceof Cluster) return;
  let role: unknown;
  try {
    role = await redis.role();
  } catch (err) {
    if (isConnectionError(err)) throw err;
    return;
  }
  const [kind, host, port, state] = Array.isArray(role) ? (role as unknown[]) : [];
  if (kind !== 'slave' && kind !== 'replica') return;
  // `unlessSynced`: a reader of everything (the report) may read a replica in step with its master, a lag behind.
  if (opts.unlessSynced && state === 'connected') return;
  const of = typeof host === 'string' && port !== undefined ? ` of ${host}:${String(port)}` : '';
  const link = typeof state === 'string' ? `, link ${state}` : '';
  throw new RedisUnavailableError(redisLocation(config), undefined, {
    reached: true,
    reason: `is a replica${of}${link}: point REDIS_URL at the master`,
  });
}
