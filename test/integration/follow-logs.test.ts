// Following a task's output (followLogs, jtm logs --follow) delivers the bytes the task wrote, in order, with no
// gap, whenever they can be had: the Redis copy keeps only the output's end, and what it no longer holds is read
// from the task's stdout file when that is readable here (adversary 22 H2: a task that ended quickly gave its last
// 64 KiB, starting mid-line; a fast writer's follower gave 8.4 MB of 16.4 MB and resolved as if complete). Where
// the bytes are in neither place, the API rejects with OUTPUT_GAP and the CLI exits 3.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { connect, OutputGapError, TaskRecordLostError, TaskStatus, type JtmClient } from '../../src/index.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { logsBytes, runJtm, startJtm, taskIds, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';

/** `for i in 1..n: seq 1 70000; sleep 0.1`: n × 408,894 bytes, faster than a follower polling a 1 MiB copy. */
const burst = (n: number): string => `for i in $(seq 1 ${n}); do seq 1 70000; sleep 0.1; done`;
const seqOut = (to: number): Buffer => execFileSync('seq', ['1', String(to)]);
const burstOut = (n: number): Buffer => Buffer.concat(Array.from({ length: n }, () => seqOut(70_000)));

describe('following output: every byte, or an in-band gap (adversary 22 H2)', () => {
  const env = testEnv();
  let work = '';
  let worker: BackgroundProcess;
  let jtm: JtmClient;

  beforeAll(async () => {
    work = tempDir('jtm-follow-');
    worker = startJtm(['worker', '-p', 'fol', '--slots', '3'], env);
    jtm = await connect({ env });
    await waitWorkers(env, 'fol', 1, 50_000);
  });
  afterAll(async () => {
    await jtm?.close();
    await worker?.stop();
  });

  it('API: a task followed at once that ends within a poll gives its whole output, not its last 64 KiB', async () => {
    const want = seqOut(100_000); // 588,895 bytes: more than JTM_OUTPUT_KEEP_BYTES, less than the tail
    for (let i = 0; i < 3; i++) {
      const [id] = await jtm.submit({ command: 'seq 1 100000' }, { pool: 'fol' });
      const chunks: Buffer[] = [];
      await jtm.followLogs(id!, c => void chunks.push(Buffer.from(c)));
      const got = Buffer.concat(chunks);
      expect(got.length).toBe(want.length);
      expect(got.equals(want)).toBe(true);
    }
  });

  it('CLI: logs --follow of a task that ends between two polls prints its whole output, exit 0', async () => {
    const [id] = taskIds(
      (await runJtm(['submit', '-p', 'fol', '-cmd', 'sleep 1; seq 1 100000'], env)).stdout,
    );
    const r = await logsBytes(env, id!, true);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(588_895);
    expect(r.out.equals(seqOut(100_000))).toBe(true);
  });

  it('API: a writer that outpaces the follower (a slow onChunk, a 1 MiB copy) loses nothing', async () => {
    const want = burstOut(12); // 4.9 MB in about 1.5 s
    const [id] = await jtm.submit({ command: `sleep 1; ${burst(12)}` }, { pool: 'fol' });
    const chunks: Buffer[] = [];
    let calls = 0;
    await jtm.followLogs(id!, async c => {
      chunks.push(Buffer.from(c));
      // The first calls slow: the follower falls behind the Redis copy, as a slow consumer makes it.
      if (calls++ < 5) await sleep(300);
    });
    const got = Buffer.concat(chunks);
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
  });

  it("the record names the run's stdout file while it runs (a follower needs it before the end)", async () => {
    const [id] = await jtm.submit({ command: 'sleep 2.5' }, { pool: 'fol' });
    const file = await waitFor(
      async () => {
        const d = await jtm.details(id!);
        return d.status === TaskStatus.running && d.stdout_file ? d.stdout_file : undefined;
      },
      'stdout_file while running',
      10_000,
    );
    expect(file).toBe(join(env['JTM_LOG_DIR']!, 'tasks', `${id}.out`));
  });

  it('CLI: logs --follow of a writer faster than its polls prints every byte, exit 0, no warning', async () => {
    const want = burstOut(12);
    const [id] = taskIds(
      (await runJtm(['submit', '-p', 'fol', '-cmd', `sleep 1; ${burst(12)}`], env)).stdout,
    );
    const r = await logsBytes(env, id!, true);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out.length).toBe(want.length);
    expect(r.out.equals(want)).toBe(true);
  });

  it('a stdout file not readable here: the rest is delivered in order, then OUTPUT_GAP (API) and exit 3 (CLI)', async () => {
    // The task's stdout directory is renamed once the worker follows the file (it keeps its descriptor, as the
    // task does): from here the path names nothing, as a file on another host does.
    const run = async (n: number): Promise<number> => {
      const dir = join(work, `gone-${n}`);
      mkdirSync(dir);
      const spec = join(work, `task-${n}.json`);
      writeFileSync(
        spec,
        JSON.stringify({ command: 'echo first; sleep 1.5; seq 1 300000', stdout: join(dir, 'out') }),
      );
      const [id] = taskIds((await runJtm(['submit', '-p', 'fol', '-f', spec], env)).stdout);
      await waitFor(
        async () => (await jtm.logs(id!)).length > 0 || undefined,
        'the first line streamed',
        30_000,
      );
      renameSync(dir, `${dir}-moved`);
      return id!;
    };
    const whole = (n: number): Buffer => readFileSync(join(work, `gone-${n}-moved`, 'out'));

    const api = await run(0);
    const chunks: Buffer[] = [];
    const err = await jtm
      .followLogs(api, c => void chunks.push(Buffer.from(c)))
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).toBeInstanceOf(OutputGapError);
    const gap = err as OutputGapError;
    expect(gap.code).toBe('OUTPUT_GAP');
    const file = whole(0);
    const got = Buffer.concat(chunks);
    // What was delivered and what is missing make up the output, and each delivered part is where it belongs.
    expect(got.length + gap.missedBytes).toBe(file.length);
    expect(gap.gaps.length).toBeGreaterThan(0);
    let at = 0;
    let from = 0;
    for (const g of gap.gaps) {
      expect(got.subarray(from, from + g.offset - at).equals(file.subarray(at, g.offset))).toBe(true);
      from += g.offset - at;
      at = g.offset + g.bytes;
    }
    expect(got.subarray(from).equals(file.subarray(at))).toBe(true);
    expect(got.subarray(0, 6).toString()).toBe('first\n');

    const cli = await run(1);
    const r = await logsBytes(env, cli, true);
    expect(r.code).toBe(3);
    const lines = r.err.trim().split('\n');
    expect(lines.at(-1)).toMatch(/^jtm logs: \d+ bytes of task \d+'s output could not be delivered/);
    expect(lines.slice(0, -1).map(l => JSON.parse(l) as { dropped_bytes: number })).not.toHaveLength(0);
    expect(r.out.length).toBeLessThan(whole(1).length);
  });
  it('a record that vanishes mid-follow (Redis flushed): not an end, TASK_RECORD_LOST (API), exit 255 and one line (CLI)', async () => {
    // Adversary 24 F4: a FLUSHALL while `jtm logs --follow` ran ended it 0, silently, with 13 of the task's 14 lines
    // (the record gone read as an ended task). Here the task's own keys go, as a flush takes them (the test Redis
    // is shared: the worker's and the other tasks' keys stay).
    const ctx = await openTestContext(env);
    try {
      const started = async (): Promise<number> => {
        const [id] = await jtm.submit(
          { command: 'for i in $(seq 1 40); do echo line $i; sleep 0.25; done' },
          { pool: 'fol' },
        );
        await waitFor(async () => (await jtm.logs(id!)).length > 0 || undefined, 'the first line', 30_000);
        return id!;
      };
      const flush = async (id: number): Promise<void> => {
        await sleep(1_000);
        await ctx.redis.del(ctx.keys.task(id), ...(await ctx.redis.keys(`${ctx.keys.task(id)}:*`)));
      };

      const cli = await started();
      // Flushed once the command has read the record (its first bytes out): under load its start took more than
      // the second flush() waits, and it found no task at all (exit 1, a full run).
      let following!: () => void;
      const reading = new Promise<void>(r => (following = r));
      const logs = logsBytes(env, cli, true, 60_000, () => following());
      await reading;
      await flush(cli);
      const r = await logs;
      expect(r.code).toBe(255);
      expect(r.err.trim().split('\n')).toEqual([
        expect.stringMatching(
          new RegExp(`^jtm logs: task ${cli}'s record is gone from Redis while its output was followed`),
        ),
      ]);
      expect(r.out.toString()).toMatch(/^line 1\n/);

      const api = await started();
      const chunks: Buffer[] = [];
      // Its outcome taken at once: the follower's poll may see the record gone (another connection) before the
      // DEL's own reply comes back, and a rejection with no handler yet was an unhandled error of the run (gate).
      const outcome = jtm
        .followLogs(api, c => void chunks.push(Buffer.from(c)))
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      await flush(api);
      const err = await outcome;
      expect((err as TaskRecordLostError | undefined)?.code).toBe('TASK_RECORD_LOST');
      expect(err).toBeInstanceOf(TaskRecordLostError);
      expect(Buffer.concat(chunks).toString()).toMatch(/^line 1\n/);
    } finally {
      await closeContext(ctx);
    }
  });
});
