// keep-output (src/redis/scripts.ts): at a run's end its output tail replaces its live stream, only while the
// stream's newest entry is still that run's.
import { describe } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { runScript } from '../../src/redis/run-script.js';
import { KEEP_OUTPUT } from '../../src/redis/scripts.js';
import { it } from '../helpers/store.js';

/** A task's output stream, kept tail and record, its record naming run `run-1`. */
async function taskKeys(ctx: JtmContext, id: number): Promise<[string, string, string]> {
  await ctx.redis.hset(ctx.keys.task(id), 'run_token', 'run-1');
  return [ctx.keys.taskOutput(id), ctx.keys.taskOutputKept(id), ctx.keys.task(id)];
}

describe('keep-output', () => {
  it("replaces the run's stream by its tail and offset, expiring with the record", async ({
    ctx,
    expect,
  }) => {
    const [stream, kept, task] = await taskKeys(ctx, 1);
    await ctx.redis.xadd(stream, '*', 'data', 'hello ', 'off', '0');
    const newest = (await ctx.redis.xadd(stream, '*', 'data', 'world', 'off', '6'))!;
    const tail = Buffer.from([0x77, 0x00, 0xff]);
    expect(
      await runScript(ctx.redis, KEEP_OUTPUT, [stream, kept, task], [newest, tail, 60_000, 8, 'run-1']),
    ).toBe(1);
    expect(await ctx.redis.exists(stream)).toBe(0);
    const [data, off, ep] = await ctx.redis.hmgetBuffer(kept, 'data', 'off', 'ep');
    expect([data, off?.toString(), ep]).toEqual([tail, '8', null]);
    expect(await ctx.redis.pttl(kept)).toBeGreaterThan(59_000);
  });

  it('keeps how many times the output started over (its file truncated or rewritten), when it did', async ({
    ctx,
    expect,
  }) => {
    const [stream, kept, task] = await taskKeys(ctx, 3);
    const newest = (await ctx.redis.xadd(stream, '*', 'data', 'again', 'off', '0', 'ep', '2'))!;
    expect(
      await runScript(ctx.redis, KEEP_OUTPUT, [stream, kept, task], [newest, 'again', 60_000, 0, 'run-1', 2]),
    ).toBe(1);
    expect(await ctx.redis.hmget(kept, 'data', 'off', 'run', 'ep')).toEqual(['again', '0', 'run-1', '2']);
  });

  it("leaves a later attempt's stream alone, and keeps nothing once the stream is gone", async ({
    ctx,
    expect,
  }) => {
    const [stream, kept, task] = await taskKeys(ctx, 2);
    const mine = (await ctx.redis.xadd(stream, '*', 'data', 'old', 'off', '0'))!;
    // The next attempt's start: a new run token, its stream dropped.
    await ctx.redis.hset(task, 'run_token', 'run-2');
    await ctx.redis.del(stream);
    const keep = (): Promise<number> =>
      runScript(ctx.redis, KEEP_OUTPUT, [stream, kept, task], [mine, 'old', 60_000, 0, 'run-1']);
    expect(await keep()).toBe(0);
    // Its first entry, perhaps in the same millisecond: the same id as this run's last one.
    await ctx.redis.xadd(stream, mine, 'data', 'new', 'off', '0');
    expect(await keep()).toBe(0);
    // This run's token, but the stream's newest entry is another's.
    await ctx.redis.hset(task, 'run_token', 'run-1');
    await ctx.redis.xadd(stream, '*', 'data', 'newer', 'off', '3');
    expect(await keep()).toBe(0);
    expect(await ctx.redis.exists(kept)).toBe(0);
    expect(await ctx.redis.xlen(stream)).toBe(2);
  });
});
