import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { submitTasks } from '../../src/tasks/submit-task.js';
import { buildTask } from '../../src/tasks/task-spec.js';
import { openCgroupHost, type CgroupHost, type TaskCgroup } from '../../src/worker/cgroup.js';
import { BIN, ROOT, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext, waitFinalRecord } from '../helpers/context.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { describeIf, type Requirement } from '../helpers/requirements.js';

/**
 * The memory where a worker runs (a Slurm job's cgroup, the node) runs out, with no task over a limit of its own.
 * The kernel's OOM killer takes the process it scores highest: before JTM_TASK_OOM_SCORE_ADJ, with several small
 * tasks that was the worker (≈ 70 MB of Node), and every task lost its run at once. Made here with a cgroup
 * whose memory limit the worker and its tasks share, as a Slurm job's.
 */
const cgroups: Requirement & { host?: CgroupHost } = (() => {
  const host = openCgroupHost(`jtm-nodeoom-${process.pid}`);
  if ('reason' in host) return { available: false, reason: `needs task cgroups (root): ${host.reason}` };
  return { available: true, host };
})();

const MB = 1024 * 1024;
const TASKS = 8;

/** The memory files of a cgroup made by openCgroupHost (v1: the memory hierarchy's directory; v2: its own). */
function memoryDir(cg: TaskCgroup): string {
  for (const procs of cg.procsFiles) {
    const dir = dirname(procs);
    if (existsSync(join(dir, 'memory.limit_in_bytes')) || existsSync(join(dir, 'memory.max'))) return dir;
  }
  throw new Error(`no memory controller in ${cg.procsFiles.join(', ')}`);
}

function usageBytes(dir: string): number {
  const file = existsSync(join(dir, 'memory.usage_in_bytes')) ? 'memory.usage_in_bytes' : 'memory.current';
  return Number(readFileSync(join(dir, file), 'utf8').trim());
}

/** A limit with the kernel's OOM killer left on (TaskCgroup.setMemoryLimit turns it off on cgroup v1). */
function limitMemory(dir: string, bytes: number): void {
  const v1 = existsSync(join(dir, 'memory.limit_in_bytes'));
  writeFileSync(join(dir, v1 ? 'memory.limit_in_bytes' : 'memory.max'), String(bytes));
}

describeIf(cgroups, 'the memory where the worker runs runs out', () => {
  // Beats every 2 s (a 6 s lease): a worker slowed by the memory pressure it is under must not lose its lease and
  // give tasks back (a fresh-clone run saw attempts 3); leases are not what it tests.
  const env = testEnv({ JTM_SAMPLE_INTERVAL: '5s', JTM_HEARTBEAT_INTERVAL: '2s' });
  const pool = 'nodeoom';
  let ctx: JtmContext;
  let cg: TaskCgroup;
  let worker: ReturnType<typeof spawn>;
  let output = '';

  beforeAll(async () => {
    ctx = await openTestContext(env);
    cg = cgroups.host!.create('worker');
    // A limit from the start (the worker looks once whether one is above it), made tight once it is idle.
    limitMemory(memoryDir(cg), 2 * 1024 * MB);
    // The worker joins the shared cgroup before Node starts, so that its memory is charged there (cgroup v1
    // does not move charges with a process).
    const join = cg.procsFiles.map(f => `echo $$ > '${f}'`).join('; ');
    worker = spawn(
      '/bin/sh',
      [
        '-c',
        `${join}; exec "$0" "$@"`,
        process.execPath,
        BIN,
        'worker',
        '-p',
        pool,
        '--slots',
        String(TASKS),
      ],
      { env, cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    worker.stdout?.on('data', d => (output += d));
    worker.stderr?.on('data', d => (output += d));
    await waitWorkers(env, pool);
    // Room for about five 30 MB tasks beside the idle worker.
    await new Promise(r => setTimeout(r, 500));
    limitMemory(memoryDir(cg), usageBytes(memoryDir(cg)) + 150 * MB);
  });
  afterAll(async () => {
    if (worker.exitCode === null && worker.signalCode === null) {
      worker.kill('SIGTERM');
      await new Promise(r => worker.once('exit', r));
    }
    await closeContext(ctx);
    cg.remove();
    cgroups.host!.dispose();
  });

  it('the kernel kills a task, never the worker: the others succeed, the killed ones end outofresource', async () => {
    // Room for about five of the eight tasks (≈ 30 MB each: a shell holding a 15 MB string) beside the worker.
    const tasks = Array.from({ length: TASKS }, (_, k) =>
      buildTask(
        { command: `x=$(head -c 15000000 /dev/zero | tr '\\0' a); sleep 5; echo done${k}` },
        { pool, cwd: ROOT, maxCommandBytes: 65536 },
      ),
    );
    const ids = await submitTasks(ctx, tasks);
    const ended = await waitFor(
      async () => {
        // A worker the kernel killed ends nothing (no manager here to re-queue its tasks): stop at once.
        if (worker.exitCode !== null || worker.signalCode !== null) return { workerDied: worker.signalCode };
        const all = await Promise.all(ids.map(id => ctx.tasks.get(id)));
        return all.every(r => r && (r.status < 0 || r.status === 4)) ? { records: all } : undefined;
      },
      'every task to end',
      60_000,
    );
    expect(ended, output).not.toHaveProperty('workerDied');
    const records = ended.records ?? [];
    const outcomes = records.map(r => r!.status_name);
    expect(outcomes.filter(s => s !== 'success' && s !== 'outofresource')).toEqual([]);
    expect(outcomes).toContain('outofresource');
    expect(outcomes).toContain('success');
    for (const r of records) {
      expect(r!.attempts).toBe(1);
      if (r!.status_name === 'outofresource')
        expect(r!.reason).toMatch(
          /^killed by the kernel's OOM killer: the memory where the worker runs ran out \(no limit of its own; peak \d+ MB\)$/,
        );
    }
  });

  it('a task killed there below its own limit is told so (not "memory limit 1 GB exceeded: peak 417 MB")', async () => {
    // The room left in the shared cgroup (≈ 150 MB above the idle worker) is far below the task's own 1 GB.
    const [id] = await submitTasks(ctx, [
      buildTask(
        { command: `x=$(head -c 200000000 /dev/zero | tr '\\0' a); sleep 2`, mem_limit: '1G' },
        { pool, cwd: ROOT, maxCommandBytes: 65536 },
      ),
    ]);
    const r = await waitFinalRecord(ctx, id!);
    expect(worker.exitCode, output).toBeNull();
    expect([r.status_name, r.reason]).toEqual([
      'outofresource',
      expect.stringMatching(
        /^killed by the kernel's OOM killer: the memory where the worker runs ran out \(its own limit 1 GB was not reached; peak \d+ MB\)$/,
      ),
    ]);
  });

  it('a task whose own limit is more than the room the running tasks leave waits for it (it started, and the kernel killed the older task)', async () => {
    // The older task says when its memory is taken: the room is read from the cgroup's usage, and under a full
    // run's load a fixed second was not always enough for python to start and take it (the newer task then
    // fitted and started first).
    const marker = join(tmpdir(), `jtm-oom-held-${process.pid}`);
    rmSync(marker, { force: true });
    const hold = (mb: number, s: number, mark = ''): string =>
      `python3 -c 'import time; x=bytearray(${mb}*1024*1024); x[::4096]=b"\\x01"*len(x[::4096]); ${mark ? `open("${mark}", "w").close(); ` : ''}time.sleep(${s})'`;
    const [older] = await submitTasks(ctx, [
      buildTask(
        { command: hold(90, 6, marker), mem_limit: '100M' },
        { pool, cwd: ROOT, maxCommandBytes: 65536 },
      ),
    ]);
    await waitFor(() => existsSync(marker) || undefined, 'the older task to hold its memory', 30_000);
    rmSync(marker, { force: true });
    const [newer] = await submitTasks(ctx, [
      buildTask({ command: hold(100, 1), mem_limit: '120M' }, { pool, cwd: ROOT, maxCommandBytes: 65536 }),
    ]);
    const ended = (id: number) => waitFinalRecord(ctx, id, 60_000);
    const [a, b] = [await ended(older!), await ended(newer!)];
    expect([a.status_name, b.status_name], output).toEqual(['success', 'success']);
    expect(Number(b.started_at)).toBeGreaterThanOrEqual(Number(a.ended_at));
    // Within a retry or two of the room coming back (5 s each). A re-delivery of the job while the slot that
    // left it was still held attached to that leaving execution and waited for the stalled check (≈ 50 s).
    expect(Number(b.started_at) - Number(a.ended_at)).toBeLessThan(15_000);
    expect(output).toMatch(
      /left in the worker's cgroup .* beside 1 running task: task left for later or another worker/,
    );
  });
});
