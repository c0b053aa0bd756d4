// Private redis-servers for the tests that stop, freeze or restart Redis (the shared one of global-setup must
// stay up for every other file).
import { afterAll, beforeAll } from 'vitest';

// @ts-expect-error plain JavaScript helper shared with the demo
import { startLocalRedis } from '../../scripts/lib/local-redis.mjs';
import type { JtmContext } from '../../src/context.js';
import { closeContext, openTestContext } from './context.js';
import { testEnv } from './env.js';
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
      // A test may have stopped its server itself (a restart): nothing to resume then.
      try {
        process.kill(s.pid, 'SIGCONT');
      } catch {
        // ESRCH: gone already
      }
      await s.stop('SIGKILL');
    }
  });
  return async o => {
    const server = await startRedis(o);
    servers.push(server);
    return server;
  };
}

/**
 * A redis-server of the suite's own, the test environment on it and an in-process context: for tests that count
 * a server's commands or change its settings (ACL users, maxmemory), which other test files running at the
 * same time would see on the shared one. Read both through the returned object inside hooks and tests.
 */
export function usePrivateContext(): { readonly env: Record<string, string>; readonly ctx: JtmContext } {
  const startRedis = usePrivateRedis();
  let env: Record<string, string> | undefined;
  let ctx: JtmContext | undefined;
  beforeAll(async () => {
    env = testEnv({ REDIS_URL: (await startRedis()).url });
    ctx = await openTestContext(env);
  });
  afterAll(async () => {
    if (ctx !== undefined) await closeContext(ctx);
  });
  const open = <T>(v: T | undefined): T => {
    if (v === undefined) throw new Error('the private context is open only in the suite’s hooks and tests');
    return v;
  };
  return {
    get env() {
      return open(env);
    },
    get ctx() {
      return open(ctx);
    },
  };
}
