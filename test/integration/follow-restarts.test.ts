// A follower whose task's output starts over — its stdout file truncated or rewritten while it runs, by the task
// or by another task naming the same file — delivers what it had, then the output from its new start, and ends
// saying so: OUTPUT_RESTARTED (API), exit 3 (CLI). Adversary 23 F1, F2: it exited 0 with bytes that were no longer
// in the file, having silently dropped (file shorter at the next look) or cut (file grown past the point read)
// what the task wrote after the truncation.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connect, OutputNotFollowedError, OutputRestartedError, type JtmClient } from '../../src/index.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { logsBytes, runJtm, startJtm, taskIds, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';

const seqOut = (from: number, to: number): Buffer =>
  execFileSync('seq', [String(from), String(to)], { maxBuffer: 64 << 20 });

describe("a task's stdout file truncated or rewritten while it is followed (adversary 23 F1, F2)", () => {
  const env = testEnv();
  let work = '';
  let worker: BackgroundProcess;
  /** A second worker: one worker runs tasks naming the same output file one after the other. */
  let other: BackgroundProcess;
  let jtm: JtmClient;

  beforeAll(async () => {
    work = tempDir('jtm-restart-');
    worker = startJtm(['worker', '-p', 'rst', '--slots', '3'], env);
    other = startJtm(['worker', '-p', 'rst2', '--slots', '1'], env);
    jtm = await connect({ env });
    await Promise.all([waitWorkers(env, 'rst', 1, 50_000), waitWorkers(env, 'rst2', 1, 50_000)]);
  });
  afterAll(async () => {
    await jtm?.close();
    await Promise.all([worker?.stop(), other?.stop()]);
  });

  /** Submits `command` with its stdout in `out` (a file of the test's own); returns the task's id. */
  const submitTo = async (out: string, command: string, pool = 'rst'): Promise<number> => {
    const spec = join(work, `${Math.random().toString(36).slice(2)}.json`);
    writeFileSync(spec, JSON.stringify({ command, stdout: out }));
    const [id] = taskIds((await runJtm(['submit', '-p', pool, '-f', spec], env)).stdout);
    return id!;
  };

  /** The file started over by the task (its stdout opened again, emptied: `exec >| file`), then more written than before (the file outgrows the point read). */
  const truncatedThenLonger = (out: string): string =>
    `seq 1 100000; sleep 1.2; exec >| ${out}; seq 200001 400000; sleep 0.3`;

  it('CLI: the file emptied by the task, then grown past the point read: both parts, in order, then exit 3', async () => {
    const out = join(work, 'longer.out');
    const id = await submitTo(out, truncatedThenLonger(out));
    const r = await logsBytes(env, id, true);
    const before = seqOut(1, 100_000);
    const after = seqOut(200_001, 400_000);
    expect(r.code).toBe(3);
    expect(r.out.length).toBe(before.length + after.length);
    expect(r.out.equals(Buffer.concat([before, after]))).toBe(true);
    expect(r.err).toMatch(/OUTPUT_RESTARTED|started over after 588895 bytes/);
    expect(r.err).toContain('truncated or rewritten');
    // Once ended, the file is the output: plain `jtm logs` prints it, exit 0.
    const plain = await logsBytes(env, id, false);
    expect(plain.code).toBe(0);
    expect(plain.out.equals(after)).toBe(true);
    expect(readFileSync(out).equals(after)).toBe(true);
  });

  it('API: the file emptied, then shorter than the point read: OUTPUT_RESTARTED after both parts', async () => {
    const out = join(work, 'shorter.out');
    const id = await submitTo(out, `seq 1 100000; sleep 1.2; exec >| ${out}; seq 1 5000; sleep 0.3`);
    const chunks: Buffer[] = [];
    const err = await jtm.followLogs(id, c => void chunks.push(Buffer.from(c))).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutputRestartedError);
    const restarted = err as OutputRestartedError;
    expect(restarted.code).toBe('OUTPUT_RESTARTED');
    expect(restarted.restarts).toEqual([{ offset: 588_895, cause: 'rewritten' }]);
    expect(Buffer.concat(chunks).equals(Buffer.concat([seqOut(1, 100_000), seqOut(1, 5000)]))).toBe(true);
  });

  it('the file emptied with nothing written after (the last act of the task): exit 3, not 0 (adversary 28 F2)', async () => {
    const out = join(work, 'emptied.out');
    const id = await submitTo(out, `seq 1 200; sleep 1.2; : > ${out}`);
    const r = await logsBytes(env, id, true);
    expect(r.code).toBe(3);
    expect(r.out.equals(seqOut(1, 200))).toBe(true);
    expect(r.err).toContain('truncated or rewritten while it ran');
    const plain = await logsBytes(env, id, false);
    expect([plain.code, plain.out.length]).toEqual([0, 0]);
  });

  it('a rewrite that keeps the size is seen within a look while the task runs, not at its end (adversary 28 F6)', async () => {
    const out = join(work, 'same-size.out');
    // Every byte replaced in place (no truncation, no growth), then the task runs on for 20 s.
    const id = await submitTo(
      out,
      `seq 1 1000; sleep 1; tr 0-9 a-j <${out} >${out}.new; dd if=${out}.new of=${out} conv=notrunc 2>/dev/null; sleep 20`,
    );
    const ctx = await openTestContext(env);
    try {
      await waitFor(
        async () => {
          const entries = await ctx.redis.xrange(ctx.keys.taskOutput(id), '-', '+');
          return entries.some(([, fields]) => fields.includes('ep')) || undefined;
        },
        'an entry of the output started over',
        8_000,
      );
    } finally {
      await jtm.kill(id);
      await closeContext(ctx);
    }
  });

  it('a follower started after the truncation gets the file as it stands, exit 0', async () => {
    const out = join(work, 'late.out');
    const id = await submitTo(out, `seq 1 100000; sleep 0.6; exec >| ${out}; seq 1 3000; sleep 2`);
    await sleep(1_500);
    const r = await logsBytes(env, id, true);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.equals(seqOut(1, 3000))).toBe(true);
  });

  it('two tasks on two workers naming one stdout file: the first one followed does not end 0', async () => {
    const out = join(work, 'shared.out');
    const a = await submitTo(out, 'for i in $(seq 1 20); do seq 1 20000; sleep 0.2; done');
    const following = logsBytes(env, a, true);
    await waitFor(
      async () => (await jtm.logs(a)).length > 0 || undefined,
      'the first task streaming',
      30_000,
    );
    await sleep(500);
    // The second task's start empties the file while the first still writes to it (each attempt's file holds
    // what that attempt wrote).
    await submitTo(out, 'echo BBBBBBBBBB; sleep 0.5', 'rst2');
    const r = await following;
    // The first task's output started over from the file's new start; where the follower was then decides
    // whether it also missed bytes the file no longer holds (a gap). Never exit 0.
    expect(r.code).toBe(3);
    expect(r.err).toContain('truncated or rewritten while it ran');
  });

  it('stdout to a FIFO: the follower says the output was not kept (exit 3), not 0 with no byte (adversary 23 F6)', async () => {
    const fifo = join(work, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    // A reader of the FIFO, as whoever named it would have.
    const reader = spawn('cat', [fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
    const read: Buffer[] = [];
    reader.stdout.on('data', (d: Buffer) => read.push(d));
    const id = await submitTo(fifo, 'for i in 1 2 3; do echo line$i; sleep 0.3; done');
    const r = await logsBytes(env, id, true);
    expect(r.code).toBe(3);
    expect(r.out.length).toBe(0);
    expect(r.err).toContain(`task ${id} wrote its stdout to ${fifo}, which is not a regular file`);
    // One line for one fact: no warning besides the error's line (adversary 34 M8: two lines).
    expect(r.err.trim().split('\n'), r.err).toHaveLength(1);
    const err = await jtm.followLogs(id, () => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OutputNotFollowedError);
    expect((err as OutputNotFollowedError).code).toBe('OUTPUT_NOT_FOLLOWED');
    expect(Buffer.concat(read).toString()).toBe('line1\nline2\nline3\n');
    reader.kill();
  });

  it('stdout to /dev/null, by its name or a symbolic link (adversary 28 F5: exit 3): nothing to follow, exit 0', async () => {
    const link = join(work, 'null-link');
    symlinkSync('/dev/null', link);
    for (const out of ['/dev/null', link]) {
      const id = await submitTo(out, 'echo gone; sleep 0.3');
      const r = await logsBytes(env, id, true);
      expect(r.err).toBe('');
      expect(r.code).toBe(0);
      expect(r.out.length).toBe(0);
    }
  });
});
