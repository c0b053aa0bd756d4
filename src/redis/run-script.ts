import { createHash } from 'node:crypto';

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

/** Runs a Lua script by its SHA, loading it on the first NOSCRIPT: one round trip in the common case. */
export async function runScript<T = unknown>(
  redis: RedisClient,
  script: string,
  keys: readonly string[],
  args: readonly (string | number | Buffer)[],
): Promise<T> {
  try {
    return (await redis.evalsha(sha1(script), keys.length, ...keys, ...args)) as T;
  } catch (err) {
    if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
    return (await redis.eval(script, keys.length, ...keys, ...args)) as T;
  }
}
