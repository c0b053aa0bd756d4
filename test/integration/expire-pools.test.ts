import { afterAll, describe, expect, it } from 'vitest';

import { expireIdlePools } from '../../src/manager/expire-pools.js';
import { TaskJobs } from '../../src/manager/task-jobs.js';
import { testEnv } from '../helpers/env.js';
import { context, stopTracked } from '../helpers/tracked.js';

afterAll(stopTracked);

describe('idle pool expiry (in process)', () => {
  it('drops a registered pool that never recorded an activity time, and keeps a recent one', async () => {
    const ctx = await context(testEnv({ JTM_POOL_IDLE: '1s' }));
    // A registry entry without last_activity (an old version's entry, or one half-written): idle since always.
    await ctx.redis.sadd(ctx.keys.pools, 'nolast', 'recent');
    await ctx.redis.hset(ctx.keys.pool('nolast'), 'name', 'nolast', 'kind', 'manual');
    await ctx.redis.hset(ctx.keys.pool('recent'), 'name', 'recent', 'last_activity', Date.now());
    const jobs = new TaskJobs(ctx);
    try {
      expect(await expireIdlePools(ctx, jobs, Date.now())).toEqual(['nolast']);
    } finally {
      await jobs.close();
    }
    expect(await ctx.redis.sismember(ctx.keys.pools, 'nolast')).toBe(0);
    expect(await ctx.redis.exists(ctx.keys.pool('nolast'))).toBe(0);
    expect(await ctx.redis.sismember(ctx.keys.pools, 'recent')).toBe(1);
  });
});
