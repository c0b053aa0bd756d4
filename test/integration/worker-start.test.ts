// The worker's start-up on the fast path (bin/run.js), as a Slurm batch script runs it: its pty host is forked
// first, before the worker has read its configuration, and gets the tasks' environment later.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
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
    // The pty host: the worker's child carrying the mark.
    const [host] = marked(mark, [worker.child.pid!]);
    const hostEnv = environOf(host!)!;
    expect(hostEnv['REDIS_URL']).toBeUndefined();
    expect(hostEnv['JTM_DASHBOARD_PASSWORD']).toBeUndefined();
    expect(Object.keys(hostEnv).filter(k => k.startsWith('JTM_TASK_'))).toEqual([]);
  });

  it('leaves no pty host behind when the worker refuses to start after forking it', async () => {
    const mark2 = randomUUID();
    const r = await runJtm(['worker', '-p', 'wstart-bad', '--lifetime', 'soon'], {
      ...env,
      JTM_TEST_MARK: mark2,
    });
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/--lifetime/);
    await waitFor(() => marked(mark2).length === 0 || undefined, 'no process left with the mark');
  });
});
