// Redis answering a command with an error is Redis being unusable (exit 255), never an answer about the task:
// kill's, status's and isalive's exit 1 means "no such id" (adversarial test 3: `jtm kill` as an ACL user
// refused a command inside a script exited 1, "invalid id").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { runJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { start } from '../helpers/tracked.js';
import { usePrivateRedis } from '../helpers/local-redis.js';

describe('Redis refusing a command', () => {
  const startRedis = usePrivateRedis();
  let env: Record<string, string>;
  let ctx: JtmContext;
  beforeAll(async () => {
    env = testEnv({ REDIS_URL: (await startRedis()).url });
    ctx = await openTestContext(env);
  });
  afterAll(async () => {
    await closeContext(ctx);
  });

  it('a command refused inside a script (an ACL user): 255, the credentials named', async () => {
    await ctx.redis.call('ACL', 'SETUSER', 'nohash', 'on', '>pw', '~*', '&*', '+@all', '-hset');
    const [id] = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'refusals'], env)).stdout);
    const as = { ...env, REDIS_URL: env['REDIS_URL']!.replace('redis://', 'redis://nohash:pw@') };
    const r = await runJtm(['kill', '-tid', String(id)], as);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(/^jtm kill: Redis at REDIS_URL refused JTM .*ACL rights\n$/);
  });

  it('an error reply (out of memory): 255 REDIS_REFUSED, and reads still answer', async () => {
    const [id] = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'refusals'], env)).stdout);
    await ctx.redis.config('SET', 'maxmemory', '1');
    try {
      const r = await runJtm(['kill', '-tid', String(id), '--json'], env);
      expect(r.code).toBe(255);
      expect(JSON.parse(r.stdout || r.stderr)).toMatchObject({
        error: { code: 'REDIS_REFUSED', exit_code: 255 },
      });
      expect((await runJtm(['status', '-tid', String(id)], env)).stdout.trim()).toBe('pending');
    } finally {
      await ctx.redis.config('SET', 'maxmemory', '0');
    }
  });

  it('a worker whose password is revoked says so once per window, not at every beat', async () => {
    await ctx.redis.call('ACL', 'SETUSER', 'wk', 'on', '>pw', '~*', '&*', '+@all');
    const as = { ...env, REDIS_URL: env['REDIS_URL']!.replace('redis://', 'redis://wk:pw@') };
    const worker = start(['worker', '-p', 'revoked'], as);
    await waitWorkers(as, 'revoked');
    await ctx.redis.call('ACL', 'SETUSER', 'wk', 'resetpass', '>pw2');
    await ctx.redis.call('CLIENT', 'KILL', 'USER', 'wk');
    // Beats every 500 ms (testEnv): eight or more failed in 4 s, each logged before.
    await waitFor(() => /heartbeat failed/.test(worker.output()) || undefined, 'a failed beat logged');
    await new Promise(r => setTimeout(r, 4000));
    const lines = worker
      .output()
      .split('\n')
      .filter(l => l.includes('heartbeat failed'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/WRONGPASS/);
  }, 30_000);
});
