// The renewed lock (src/manager/renewed-lock.ts) of the manager's Slurm provisioning, in-process on a real Redis.
import { setTimeout as sleep } from 'node:timers/promises';

import { describe } from 'vitest';

import { takeRenewedLock } from '../../src/manager/renewed-lock.js';
import { it } from '../helpers/store.js';

describe.concurrent('a renewed lock', () => {
  it('lives a short TTL, renewed while held: one holder at a time, free at once when released', async ({
    ctx,
    expect,
  }) => {
    const key = ctx.keys.slurmProvisionLock;
    const lock = await takeRenewedLock(ctx, key, 300, 60_000);
    expect(lock?.held()).toBe(true);
    await sleep(1000); // three TTLs: renewed
    expect([lock?.held(), await ctx.redis.exists(key)]).toEqual([true, 1]);
    expect(Number(await ctx.redis.pttl(key))).toBeLessThanOrEqual(300);
    expect(await takeRenewedLock(ctx, key, 300, 60_000)).toBeUndefined();
    await lock!.release();
    expect(await ctx.redis.exists(key)).toBe(0);
    const next = await takeRenewedLock(ctx, key, 300, 60_000);
    expect(next?.held()).toBe(true);
    await next!.release();
  });

  it('is let go when held too long, and known lost when another took it', async ({ ctx, expect }) => {
    const key = ctx.keys.slurmProvisionLock;
    const long = await takeRenewedLock(ctx, key, 200, 300);
    await sleep(800);
    expect([long?.held(), await ctx.redis.exists(key)]).toEqual([false, 0]);
    const taken = await takeRenewedLock(ctx, key, 200, 60_000);
    await ctx.redis.set(key, 'another manager', 'PX', 10_000);
    await sleep(300);
    expect(taken?.held()).toBe(false);
    // Its release leaves the other's lock alone.
    await taken!.release();
    expect(await ctx.redis.get(key)).toBe('another manager');
  });
});
