// keep-output (src/redis/scripts.ts): at a run's end its output tail replaces its live stream, only while the
// stream's newest entry is still that run's.
import { describe } from 'vitest';

import { runScript } from '../../src/redis/run-script.js';
import { KEEP_OUTPUT } from '../../src/redis/scripts.js';
import { it } from '../helpers/store.js';

describe('keep-output', () => {
  it("replaces the run's stream by its tail and offset, expiring with the record", async ({
    ctx,
    expect,
  }) => {
    const [stream, kept] = [ctx.keys.taskOutput(1), ctx.keys.taskOutputKept(1)];
    await ctx.redis.xadd(stream, '*', 'data', 'hello ', 'off', '0');
    const newest = (await ctx.redis.xadd(stream, '*', 'data', 'world', 'off', '6'))!;
    const tail = Buffer.from([0x77, 0x00, 0xff]);
    expect(await runScript(ctx.redis, KEEP_OUTPUT, [stream, kept], [newest, tail, 60_000, 8])).toBe(1);
    expect(await ctx.redis.exists(stream)).toBe(0);
    const [data, off] = await ctx.redis.hmgetBuffer(kept, 'data', 'off');
    expect([data, off?.toString()]).toEqual([tail, '8']);
    expect(await ctx.redis.pttl(kept)).toBeGreaterThan(59_000);
  });

  it("leaves a later attempt's stream alone, and keeps nothing once the stream is gone", async ({
    ctx,
    expect,
  }) => {
    const [stream, kept] = [ctx.keys.taskOutput(2), ctx.keys.taskOutputKept(2)];
    const mine = (await ctx.redis.xadd(stream, '*', 'data', 'old', 'off', '0'))!;
    await ctx.redis.del(stream); // the next attempt's start
    expect(await runScript(ctx.redis, KEEP_OUTPUT, [stream, kept], [mine, 'old', 60_000, 0])).toBe(0);
    await ctx.redis.xadd(stream, '*', 'data', 'new', 'off', '0');
    expect(await runScript(ctx.redis, KEEP_OUTPUT, [stream, kept], [mine, 'old', 60_000, 0])).toBe(0);
    expect(await ctx.redis.exists(kept)).toBe(0);
    expect(await ctx.redis.xlen(stream)).toBe(1);
  });
});
