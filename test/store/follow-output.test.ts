// jtm logs --follow (streamTaskOutput) across the end of a run, a give-back and a re-run that ends within one
// poll: the re-run's whole output, after the first run's (review of adversary 8 I6's change: the reader's offset
// was the first run's, and it skipped the re-run's kept tail).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe } from 'vitest';

import { runScript } from '../../src/redis/run-script.js';
import { KEEP_OUTPUT } from '../../src/redis/scripts.js';
import { TaskStatus as S } from '../../src/tasks/status.js';
import { streamTaskOutput } from '../../src/tasks/task-output.js';
import { it, queuedTask } from '../helpers/store.js';
import { tempDir, waitFor } from '../helpers/env.js';
import type { JtmContext } from '../../src/context.js';

/** The run of worker w1, token r1, ends in success. */
const succeed = (ctx: JtmContext, id: number, at: number): Promise<unknown> =>
  ctx.tasks.transitionFenced(id, { workerId: 'w1', runToken: 'r1' }, S.success, 'exit code 0', {}, at);

describe("following a task's output", () => {
  it('across a give-back and a re-run that ends between two polls', async ({ ctx, expect }) => {
    const now = Date.now();
    const id = await queuedTask(ctx, { pool: 'follow' }, now - 10_000);
    const [stream, kept, task] = [ctx.keys.taskOutput(id), ctx.keys.taskOutputKept(id), ctx.keys.task(id)];
    const keep = (newest: string, tail: Buffer, off: number, token: string): Promise<unknown> =>
      runScript(ctx.redis, KEEP_OUTPUT, [stream, kept, task], [newest, tail, 60_000, off, token]);
    await ctx.tasks.start(id, 'w1', 'h', 'r1', '', now - 9_000);
    const first = Buffer.alloc(10_000, 'a');
    const newest1 = (await ctx.redis.xadd(stream, '*', 'data', first, 'off', '0'))!;
    const got: Buffer[] = [];
    const reading = streamTaskOutput(ctx, id, chunk => void got.push(Buffer.from(chunk)), true);
    await waitFor(() => Buffer.concat(got).length === 10_000 || undefined, 'the first run read');
    // Run 1 ends and is given back; run 2 starts, prints, ends: all before the reader's next poll.
    await keep(newest1, first.subarray(10_000 - 4096), 10_000 - 4096, 'r1');
    const end = (worker: string, runToken: string, to: number, why: string, at: number): Promise<unknown> =>
      ctx.tasks.transitionFenced(id, { workerId: worker, runToken }, to, why, {}, at);
    await end('w1', 'r1', S.pending, 'given back', now - 8_000);
    await ctx.tasks.start(id, 'w2', 'h', 'r2', '', now - 7_000);
    const second = Buffer.from('hello\n');
    const newest2 = (await ctx.redis.xadd(stream, '*', 'data', second, 'off', '0'))!;
    await keep(newest2, second, 0, 'r2');
    await end('w2', 'r2', S.success, 'exit code 0', now - 6_000);
    // Said, not only warned of: a CLI follower ends 3 (OUTPUT_RESTARTED), not 0 (adversary 23 F5).
    expect((await reading).restarts).toEqual([{ offset: 10_000, cause: 'run again' }]);
    expect(Buffer.concat(got).equals(Buffer.concat([first, second]))).toBe(true);
  });

  it('says how many bytes went by when the live copy was trimmed between two reads (adversary 10 K9)', async ({
    ctx,
    expect,
  }) => {
    const now = Date.now();
    const id = await queuedTask(ctx, { pool: 'follow' }, now - 10_000);
    const stream = ctx.keys.taskOutput(id);
    await ctx.tasks.start(id, 'w1', 'h', 'r1', '', now - 9_000);
    const warned: number[] = [];
    const logger = Object.assign(Object.create(ctx.logger) as typeof ctx.logger, {
      warn: (o: { dropped_bytes?: number }) => void (o.dropped_bytes && warned.push(o.dropped_bytes)),
    });
    // Its stdout file is not on this host: the gap cannot be read from it (adversary 22 H2).
    await ctx.redis.hset(ctx.keys.task(id), 'stdout_file', '/nonexistent/jtm-follow.out');
    const got: Buffer[] = [];
    const reading = streamTaskOutput({ ...ctx, logger }, id, c => void got.push(Buffer.from(c)), true);
    await ctx.redis.xadd(stream, '*', 'data', 'a'.repeat(100), 'off', '0');
    await waitFor(() => Buffer.concat(got).length === 100 || undefined, 'the first entry read');
    // Two entries trimmed before the reader's next poll (the stream keeps its last JTM_OUTPUT_TAIL_BYTES).
    const gone = [
      await ctx.redis.xadd(stream, '*', 'data', 'b'.repeat(100), 'off', '100'),
      await ctx.redis.xadd(stream, '*', 'data', 'c'.repeat(100), 'off', '200'),
    ];
    await ctx.redis.xdel(stream, ...(gone as string[]));
    await ctx.redis.xadd(stream, '*', 'data', 'd'.repeat(100), 'off', '300');
    await waitFor(() => Buffer.concat(got).length === 200 || undefined, 'the last entry read');
    await succeed(ctx, id, now);
    expect((await reading).gaps).toEqual([{ offset: 100, bytes: 200 }]);
    expect(warned).toEqual([200]);
  });

  /**
   * A running task whose 400-byte output is in a file of `dir` and whose live copy holds only its last 100 bytes,
   * the file named by the record's field `field`, and a follower started on it.
   */
  async function followFileBacked(
    ctx: JtmContext,
    dir: string,
    field: 'stdout' | 'stdout_file',
    now: number,
  ) {
    const whole = Buffer.from('a'.repeat(100) + 'b'.repeat(100) + 'c'.repeat(100) + 'd'.repeat(100));
    const file = join(dir, 'out');
    writeFileSync(file, whole);
    const id = await queuedTask(
      ctx,
      { pool: 'follow', ...(field === 'stdout' ? { stdout: file } : {}) },
      now - 10_000,
    );
    await ctx.tasks.start(id, 'w1', 'h', 'r1', '', now - 9_000);
    if (field === 'stdout_file') await ctx.redis.hset(ctx.keys.task(id), 'stdout_file', file);
    const stream = ctx.keys.taskOutput(id);
    await ctx.redis.xadd(stream, '*', 'data', whole.subarray(300), 'off', '300');
    const got: Buffer[] = [];
    const reading = streamTaskOutput(ctx, id, c => void got.push(Buffer.from(c)), true);
    return { id, file, stream, whole, got, reading };
  }

  it('reads what the live copy lost from the stdout file the task named at submit, before the worker records it (review of s15)', async ({
    ctx,
    expect,
  }) => {
    const dir = tempDir('jtm-follow-');
    const now = Date.now();
    // Named at submit; stdout_file not written yet (the worker writes it a second into the run).
    const { id, whole, got, reading } = await followFileBacked(ctx, dir, 'stdout', now);
    // Sooner than the 5 s a gap waits for the record to name the file.
    await waitFor(() => Buffer.concat(got).length === 400 || undefined, 'the whole output', 3000);
    expect(Buffer.concat(got).equals(whole)).toBe(true);
    await succeed(ctx, id, now);
    expect((await reading).gaps).toEqual([]);
  });

  it("reads what the live copy lost from the run's stdout file, only where the file holds the copy's bytes (adversary 22 H2)", async ({
    ctx,
    expect,
  }) => {
    const dir = tempDir('jtm-follow-');
    const now = Date.now();
    // The live copy holds only the last 100 bytes: the first 300 come from the file.
    const { id, file, stream, whole, got, reading } = await followFileBacked(ctx, dir, 'stdout_file', now);
    await waitFor(() => Buffer.concat(got).length === 400 || undefined, 'the whole output');
    expect(Buffer.concat(got).equals(whole)).toBe(true);
    // Another file under that name (another task's, a later rewrite): its bytes where the copy resumes differ,
    // so what went by is a gap, not its bytes.
    writeFileSync(file, Buffer.concat([whole, Buffer.alloc(200, 'x')]));
    await ctx.redis.xadd(stream, '*', 'data', Buffer.alloc(100, 'f'), 'off', '500');
    await waitFor(() => Buffer.concat(got).length === 500 || undefined, 'the entry after the gap');
    await succeed(ctx, id, now);
    expect((await reading).gaps).toEqual([{ offset: 400, bytes: 100 }]);
    expect(Buffer.concat(got).subarray(400).equals(Buffer.alloc(100, 'f'))).toBe(true);
  });

  it('a file rewritten while a slow reader reads a part of it: the rest of that part is a gap, not the new bytes (adversary 28 F1)', async ({
    ctx,
    expect,
  }) => {
    const dir = tempDir('jtm-follow-');
    const now = Date.now();
    // 3 MiB of output whose copy holds only the part from 2 MiB: the reader reads 0–2 MiB from the file, in
    // parts of 1 MiB; the file is rewritten (same size, other bytes) while the first part is being written.
    const mib = 1024 * 1024;
    const whole = Buffer.alloc(3 * mib, 'A');
    for (let i = 0; i < whole.length; i += 64) whole.write(String(i).padStart(12, '0'), i);
    const other = Buffer.from(whole.toString('latin1').replace(/A/g, 'B'), 'latin1');
    const file = join(dir, 'out');
    writeFileSync(file, whole);
    const id = await queuedTask(ctx, { pool: 'follow' }, now - 10_000);
    await ctx.tasks.start(id, 'w1', 'h', 'r1', '', now - 9_000);
    await ctx.redis.hset(ctx.keys.task(id), 'stdout_file', file);
    await ctx.redis.xadd(
      ctx.keys.taskOutput(id),
      '*',
      'data',
      whole.subarray(2 * mib),
      'off',
      String(2 * mib),
    );
    const got: Buffer[] = [];
    const reading = streamTaskOutput(
      ctx,
      id,
      c => {
        if (got.length === 0) writeFileSync(file, other);
        got.push(Buffer.from(c));
      },
      true,
    );
    await waitFor(() => Buffer.concat(got).length >= 2 * mib || undefined, 'the copy delivered', 5000);
    await succeed(ctx, id, now);
    const { gaps } = await reading;
    expect(gaps).toEqual([{ offset: mib, bytes: mib }]);
    expect(Buffer.concat(got).equals(Buffer.concat([whole.subarray(0, mib), whole.subarray(2 * mib)]))).toBe(
      true,
    );
  });
});
