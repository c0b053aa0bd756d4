// The worker's start-up on the fast path (bin/run.js), as a Slurm batch script runs it: its pty host is forked
// first, by bin/run.js before anything is compiled, with no environment of its own, and gets the tasks'
// environment later from the worker that adopts it.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runJtm, startJtm, taskIds, waitWorkers, type BackgroundProcess } from '../helpers/cli.js';
import { useTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';

/** The environment of process `pid` (undefined once it is gone or unreadable). */
function environOf(pid: number): Record<string, string> | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/environ`, 'utf8');
    return Object.fromEntries(
      text
        .split('\0')
        .filter(Boolean)
        .map(kv => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
    );
  } catch {
    return undefined;
  }
}

/** Processes (other than `except`) whose environment carries JTM_TEST_MARK=`mark`. */
function marked(mark: string, except: readonly number[] = []): number[] {
  return readdirSync('/proc')
    .filter(d => /^\d+$/.test(d))
    .map(Number)
    .filter(pid => !except.includes(pid) && environOf(pid)?.['JTM_TEST_MARK'] === mark);
}

/** The child processes of `pid`, with their command lines. */
function childrenOf(pid: number): { pid: number; cmdline: string }[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .trim()
    .split(' ')
    .filter(Boolean)
    .map(Number)
    .map(child => ({ pid: child, cmdline: readFileSync(`/proc/${child}/cmdline`, 'utf8') }));
}

/** Processes whose working directory is `dir`. */
function runningIn(dir: string): number[] {
  return readdirSync('/proc')
    .filter(d => /^\d+$/.test(d))
    .map(Number)
    .filter(pid => {
      try {
        return readlinkSync(`/proc/${pid}/cwd`) === dir;
      } catch {
        return false;
      }
    });
}

describe('worker start-up on the fast path', () => {
  const mark = randomUUID();
  const env = testEnv({ JTM_TEST_MARK: mark, JTM_DASHBOARD_PASSWORD: 'not-for-tasks' });
  const work = tempDir('jtm-wstart-');
  let worker: BackgroundProcess;
  const ctx = useTestContext(env);

  beforeAll(async () => {
    worker = startJtm(['worker', '-p', 'wstart', '--slots', '1'], env);
    await waitWorkers(env, 'wstart');
  });
  afterAll(async () => {
    await worker.stop();
  });

  it('runs tasks in the environment the worker gives its pty host, without secrets; the host has none either', async () => {
    const out = join(work, 'env.txt');
    const r = await runJtm(['submit', '-p', 'wstart', '-cmd', `env > ${out}`], env, { cwd: work });
    const [id] = taskIds(r.stdout);
    await waitFor(async () => (await ctx().tasks.status(id!)) === 4 || undefined, 'task done');
    const seen = Object.fromEntries(
      readFileSync(out, 'utf8')
        .split('\n')
        .filter(l => l.includes('='))
        .map(l => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(seen['JTM_TEST_MARK']).toBe(mark);
    expect(seen['JTM_TASK_ID']).toBe(String(id));
    expect(seen['JTM_TASK_SCOPE']).toBeTruthy();
    expect(seen['REDIS_URL']).toBeUndefined();
    expect(seen['JTM_DASHBOARD_PASSWORD']).toBeUndefined();
    // The pty host: the worker's one child (the one bin/run.js forked, adopted: not a second), with no
    // environment but its IPC channel's.
    const hosts = childrenOf(worker.child.pid!);
    expect(hosts).toHaveLength(1);
    expect(hosts[0]!.cmdline).toMatch(/dist\/fast\/pty-host\.js/);
    const hostEnv = environOf(hosts[0]!.pid)!;
    expect(Object.keys(hostEnv).filter(k => !k.startsWith('NODE_CHANNEL_'))).toEqual([]);
    expect(marked(mark, [worker.child.pid!])).toEqual([]);
  });

  it('leaves no pty host behind when the worker refuses to start after forking it', async () => {
    // The host runs in the worker's directory: a directory of its own finds it.
    const dir = tempDir('jtm-wstart-bad-');
    const r = await runJtm(['worker', '-p', 'wstart-bad', '--lifetime', 'soon'], env, { cwd: dir });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--lifetime/);
    await waitFor(() => runningIn(dir).length === 0 || undefined, 'no process left in its directory');
  });

  it('refuses a worker id a live worker holds, and leaves that worker as it was', async () => {
    const first = startJtm(['worker', '-p', 'wstart-dup', '--worker_id', 'dup1'], env);
    try {
      await waitWorkers(env, 'wstart-dup');
      const record = await ctx().redis.hgetall(ctx().keys.worker('dup1'));
      const r = await runJtm(['worker', '-p', 'wstart-dup', '--worker_id', 'dup1'], env);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toMatch(
        new RegExp(`^jtm worker: worker id dup1 is in use by a live worker \\(pid ${first.child.pid} on `),
      );
      expect((await ctx().redis.hgetall(ctx().keys.worker('dup1')))['pid']).toBe(record['pid']);
    } finally {
      await first.stop();
    }
  });
});
