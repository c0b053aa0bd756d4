import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { TaskAccounting } from '../../src/worker/accounting.js';
import { openCgroupHost, type TaskCgroup } from '../../src/worker/cgroup.js';
import { findByToken, PidWindow, pidsBetween } from '../../src/worker/task-token.js';
import { readProc } from '../../src/worker/proc-files.js';
import { waitFor } from '../helpers/env.js';
import { describeIf } from '../helpers/requirements.js';

/** Starts `bash -c script` detached; resolves with the pid of the `sleep` it leaves behind (printed on stdout). */
function leaveSleeper(script: string, env: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const c = spawn('bash', ['-c', script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    c.stdout.on('data', d => (out += d));
    c.on('error', reject);
    c.on('exit', () => resolve(Number(out.trim())));
  });
}

function kill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL');
  } catch {
    // gone
  }
}

describe('the processes a task left behind, found without reading all of /proc', () => {
  it('pid windows: the pids handed out after a mark, across the wrap at pid_max', () => {
    const plain = pidsBetween(100, 200);
    expect([100, 101, 200, 201, 50].map(plain)).toEqual([false, true, true, false, false]);
    const wrapped = pidsBetween(32_000, 400);
    expect([32_001, 32_767, 300, 400, 401, 31_999].map(wrapped)).toEqual([
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it('without ns_last_pid: pids above the root, only where pid_max makes a wrap impossible', () => {
    const since = PidWindow.aboveRoot(1000).since();
    const pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
    if (pidMax >= 4_000_000) expect([999, 1000, 1001].map(p => since?.(p))).toEqual([false, true, true]);
    else expect(since).toBeUndefined();
  });

  it('a detached process started after the window opened is found by its token; older processes are not read', async () => {
    const window = PidWindow.open();
    if (!window) return; // ns_last_pid unreadable here: the whole of /proc is read instead
    const token = randomBytes(12).toString('hex');
    const pid = await leaveSleeper('setsid sleep 30 >/dev/null 2>&1 & echo $!', { JTM_TASK_TOKEN: token });
    try {
      const since = window.since();
      expect(since?.(pid)).toBe(true);
      expect(since?.(process.pid)).toBe(false);
      await waitFor(
        () => findByToken(token, window).some(p => p.pid === pid),
        'the process found by token',
        5000,
      );
    } finally {
      kill(pid);
    }
  });

  it("a task's cgroup names its processes only once something shows that the wrapper joined it", () => {
    let pids: number[] = [];
    let peak = 0;
    const cgroup: TaskCgroup = {
      procsFiles: [],
      setMemoryLimit: () => undefined,
      peakBytes: () => peak,
      currentBytes: () => 0,
      cpuSeconds: () => 0,
      oomKills: () => 0,
      pids: () => pids,
      remove: () => true,
      removeLater: () => Promise.resolve(true),
    };
    const acct = new TaskAccounting('cgroup-v1', undefined, cgroup);
    // Empty and never charged: the wrapper may never have joined (its processes may be anywhere).
    expect(acct.memberPids()).toBeUndefined();
    peak = 4096;
    expect(acct.memberPids()).toEqual([]);
    pids = [12, 34];
    peak = 0;
    expect(acct.memberPids()).toEqual([12, 34]);
    acct.close();
    expect(acct.memberPids()).toBeUndefined();
  });

  const cgroupHost = openCgroupHost(`jtm-tp-${process.pid}`);
  describeIf(
    'reason' in cgroupHost
      ? { available: false, reason: `needs task cgroups: ${cgroupHost.reason}` }
      : { available: true },
    'with a real task cgroup',
    () => {
      it('a setsid daemon of a task that has ended is in its cgroup', async () => {
        if ('reason' in cgroupHost) return;
        const cg = cgroupHost.create('task-test');
        const acct = new TaskAccounting(cgroupHost.mode, undefined, cg);
        let pid = 0;
        try {
          pid = await leaveSleeper(
            'for f in $PROCS; do echo $$ >"$f"; done; ( setsid sleep 30 >/dev/null 2>&1 & echo $! )',
            { PROCS: cg.procsFiles.join(' ') },
          );
          expect(readProc(pid)?.state).not.toBe('Z');
          expect(acct.memberPids()).toContain(pid);
        } finally {
          kill(pid);
          await waitFor(() => (acct.memberPids() ?? []).length === 0, 'the cgroup to empty', 5000);
          acct.close();
          cgroupHost.dispose();
        }
      });
    },
  );
});
