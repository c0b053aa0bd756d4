import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { describe, expect, it } from 'vitest';

import { scanRunProcesses } from '../../../src/worker/leftovers.js';
import { asRoot, itIf } from '../../helpers/requirements.js';

describe('the scan for the processes of earlier runs', () => {
  it("does not wait for Node's thread pool", async () => {
    // A re-run starts only after this scan (killEarlierRuns). Read through the thread pool, one file at a time,
    // it queued behind the worker's other file work (a cgroup's rmdir waits in the kernel): on a loaded node,
    // re-runs claimed by live workers stayed `running` 17 s to 146 s without starting (adversary 16 Q3).
    // Here every thread of the pool is parked on a FIFO's open, which waits for a writer.
    const dir = mkdtempSync(join(tmpdir(), 'jtm-scan-'));
    const threads = Number(process.env['UV_THREADPOOL_SIZE'] ?? 4);
    const fifos = Array.from({ length: threads }, (_, i) => join(dir, `f${i}`));
    for (const f of fifos) execFileSync('mkfifo', [f]);
    const parked: Promise<FileHandle>[] = fifos.map(f => open(f, 'r'));
    const scope = `scan-${randomBytes(6).toString('hex')}`;
    const token = randomBytes(12).toString('hex');
    const child = spawn('sleep', ['30'], {
      stdio: 'ignore',
      env: { ...process.env, JTM_TASK_TOKEN: token, JTM_TASK_ID: '7', JTM_TASK_SCOPE: scope },
    });
    try {
      await sleep(100); // the child has exec'd: its environment is readable
      const found = await Promise.race([scanRunProcesses(scope), sleep(10_000).then(() => 'stuck' as const)]);
      expect(found).not.toBe('stuck');
      if (found === 'stuck') return;
      expect(found.get(token)?.procs.map(p => p.pid)).toEqual([child.pid]);
      expect(found.get(token)?.taskId).toBe(7);
    } finally {
      child.kill('SIGKILL');
      // A writer lets each parked open through (ENXIO: that open has not reached its FIFO yet; tried again).
      for (const f of fifos) await releaseParkedOpen(f);
      for (const h of await Promise.all(parked)) await h.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("the scan for the processes of earlier runs, on a root worker's node", () => {
  itIf(
    asRoot('a process of another user'),
    "skips another user's process that carries the deployment's scope (adversary 35 F6)",
    async () => {
      // The scope is no secret (every task's environment shows it): a local user without any credential planted a
      // process carrying it, and a root worker's sweep signalled it and recorded it as a leftover of task 1.
      const scope = `scan-${randomBytes(6).toString('hex')}`;
      const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', JTM_TASK_ID: '1', JTM_TASK_SCOPE: scope };
      const mine = spawn('sleep', ['30'], {
        stdio: 'ignore',
        env: { ...env, JTM_TASK_TOKEN: 'a'.repeat(24) },
      });
      const theirs = spawn('sleep', ['30'], {
        stdio: 'ignore',
        uid: 65534,
        gid: 65534,
        env: { ...env, JTM_TASK_TOKEN: 'b'.repeat(24) },
      });
      try {
        await sleep(200); // both have exec'd: their environments are readable
        const found = await scanRunProcesses(scope);
        expect(found.get('a'.repeat(24))?.procs.map(p => p.pid)).toEqual([mine.pid]);
        expect(found.has('b'.repeat(24))).toBe(false);
      } finally {
        mine.kill('SIGKILL');
        theirs.kill('SIGKILL');
      }
    },
  );
});

/** Opens `fifo` for writing, which lets its parked reader's open through; retried while that open has not yet
 * reached the FIFO (ENXIO: no reader yet). */
async function releaseParkedOpen(fifo: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENXIO' || i >= 500) throw err;
      await sleep(10);
    }
  }
}
