import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, it } from 'vitest';

import { runJtm, startJtm, taskIds, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { isAlive, tempDir, testEnv, waitFor } from '../helpers/env.js';
import { describeIf, taskCgroups } from '../helpers/requirements.js';
import { readProc } from '../../src/worker/proc-files.js';

/*
 * A task's child that leaves the session and clears its environment (`setsid env -i …`, what a daemon does) has
 * neither the task's process group nor its JTM_TASK_TOKEN. When the worker died, its pty host killed the group
 * and the token's processes, and the next worker swept by token: that child ran on beside the task's re-run on
 * another worker (adversary 17 R1). Its task cgroup still holds it.
 */
describeIf(taskCgroups(), "a detached child without the task's token, when its worker dies", () => {
  const env = testEnv({ JTM_ACCOUNTING: 'auto', JTM_HEARTBEAT_INTERVAL: '1s' });
  const work = tempDir('jtm-death-detached-');
  const workers: BackgroundProcess[] = [];
  const strays: { pid: number; start: number | undefined }[] = [];
  afterAll(async () => {
    for (const w of workers) await w.stop('SIGKILL');
    // Only if still that process: its pid, once free, may be another test's process now.
    for (const p of strays) if (readProc(p.pid)?.start === p.start) process.kill(p.pid, 'SIGKILL');
  });

  /** Starts a task that detaches `setsid env -i` (writing its pid) and then sleeps; the detached pid. */
  const detachedChild = async (pool: string, name: string): Promise<number> => {
    const pidFile = join(work, `${name}.pid`);
    const file = join(work, `${name}.jsonl`);
    writeFileSync(
      file,
      JSON.stringify({
        command: `setsid env -i /bin/sh -c 'echo $$ > ${pidFile}; exec sleep 300' & sleep 300`,
      }),
    );
    taskIds((await runJtm(['submit', '-f', file, '-p', pool], env)).stdout);
    const pid = await waitFor(
      () => (existsSync(pidFile) ? Number(readFileSync(pidFile, 'utf8')) || undefined : undefined),
      'the detached child',
      30_000,
    );
    strays.push({ pid, start: readProc(pid)?.start });
    return pid;
  };

  /** A worker of a pool of its own, running such a task. */
  const workerWithDetachedChild = async (
    name: string,
  ): Promise<{ worker: BackgroundProcess; child: number }> => {
    const pool = `dd-${name}-${process.pid}`;
    const worker = startJtm(['worker', '-p', pool, '--slots', '1'], env);
    workers.push(worker);
    await waitWorkers(env, pool, 1, 60_000);
    return { worker, child: await detachedChild(pool, name) };
  };

  it('the worker killed alone: its pty host kills the child through the task cgroup', async () => {
    const { worker, child } = await workerWithDetachedChild('alone');
    await worker.stop('SIGKILL');
    await waitFor(() => !isAlive(child) || undefined, 'the detached child killed by the pty host', 15_000);
  });

  it('the worker stopped (SIGSTOP) past its watchdog: its pty host kills the child through the task cgroup', async () => {
    const { worker, child } = await workerWithDetachedChild('stopped');
    worker.child.kill('SIGSTOP');
    try {
      await waitFor(() => !isAlive(child) || undefined, 'the detached child killed by the watchdog', 30_000);
    } finally {
      worker.child.kill('SIGCONT');
    }
  });
});
