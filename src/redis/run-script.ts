import { createHash } from 'node:crypto';

import { Cluster, ReplyError } from 'ioredis';

import type { RedisClient } from './connection.js';

const shas = new Map<string, string>();

function sha1(script: string): string {
  let sha = shas.get(script);
  if (!sha) {
    sha = createHash('sha1').update(script).digest('hex');
    shas.set(script, sha);
  }
  return sha;
}

/** The scripts each connection has sent SCRIPT LOAD for since it last connected. */
const loadedOn = new WeakMap<RedisClient, Set<string>>();

/**
 * A connection's first run of a script is preceded by its SCRIPT LOAD, sent and not awaited: commands on one
 * connection reach Redis in order, so every EVALSHA behind it finds the script. Without it, the concurrent runs
 * of a new script (a bulk submit's chunks, sent together) were answered NOSCRIPT and sent again as EVAL — and when
 * another client loaded the script between two of them reaching Redis, the later chunks ran first: a 2,600-task
 * submit got ids 1251–2000 for its first 750 tasks (a new user's full run, s19). A reconnect may land on a Redis
 * that lost its scripts (a restart), so the list is forgotten on `close`. A Redis Cluster sends SCRIPT LOAD to one
 * node only: there the NOSCRIPT fallback alone applies. An operator's SCRIPT FLUSH on a live connection is left to
 * the fallback too (each run still runs once, with its own ids; only the order across runs sent together is lost).
 */
function loadAhead(redis: RedisClient, script: string, sha: string): void {
  if (redis instanceof Cluster) return;
  let loaded = loadedOn.get(redis);
  if (!loaded) {
    const set = (loaded = new Set<string>());
    loadedOn.set(redis, set);
    redis.on('close', () => set.clear());
  }
  if (loaded.has(sha)) return;
  loaded.add(sha);
  // A load lost with its connection is made again by the next run (the fallback covers this one); one refused (an
  // ACL user without SCRIPT) is not: the fallback alone serves that connection, with no refused command per run.
  redis.script('LOAD', script).catch((err: unknown) => {
    if (!(err instanceof ReplyError)) loaded.delete(sha);
  });
}

/**
 * Runs a Lua script by its SHA: one round trip in the common case. Loaded ahead on a connection's first use of it
 * (loadAhead), and on a NOSCRIPT all the same (a Redis that lost it under a live connection).
 */
export async function runScript<T = unknown>(
  redis: RedisClient,
  script: string,
  keys: readonly string[],
  args: readonly (string | number | Buffer)[],
): Promise<T> {
  const sha = sha1(script);
  loadAhead(redis, script, sha);
  try {
    return (await redis.evalsha(sha, keys.length, ...keys, ...args)) as T;
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return (await redis.eval(script, keys.length, ...keys, ...args)) as T;
  }
}
