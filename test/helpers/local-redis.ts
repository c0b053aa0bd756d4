// Private redis-servers for the tests that stop, freeze or restart Redis (the shared one of global-setup must
// stay up for every other file).
import { afterAll } from 'vitest';

// @ts-expect-error plain JavaScript helper shared with the demo
import { startLocalRedis } from '../../scripts/lib/local-redis.mjs';
import { stopTracked } from './tracked.js';

export interface LocalRedis {
  url: string;
  port: number;
  dir: string;
  pid: number;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}

export interface LocalRedisOptions {
  port?: number;
  dir?: string;
  args?: string[];
}

/** A redis-server of its own (a free port and a temporary directory unless given). */
export const startRedis = startLocalRedis as (o?: LocalRedisOptions) => Promise<LocalRedis>;

/**
 * A starter of private servers that this file's afterAll stops: the JTM processes first (tracked.ts), then
 * each server, resumed first in case a test left it frozen (SIGSTOP) and killed (nothing to keep).
 */
export function usePrivateRedis(): (o?: LocalRedisOptions) => Promise<LocalRedis> {
  const servers: LocalRedis[] = [];
  afterAll(async () => {
    await stopTracked();
    for (const s of servers) {
      process.kill(s.pid, 'SIGCONT');
      await s.stop('SIGKILL');
    }
  });
  return async o => {
    const server = await startRedis(o);
    servers.push(server);
    return server;
  };
}
