// Redis answering a command with an error is Redis being unusable (exit 255), never an answer about the task:
// kill's, status's and isalive's exit 1 means "no such id" (adversarial test 3: `jtm kill` as an ACL user
// refused a command inside a script exited 1, "invalid id").
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { runJtm, taskIds } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { testEnv } from '../helpers/env.js';
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
});
