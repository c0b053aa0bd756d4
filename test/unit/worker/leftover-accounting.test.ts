// /proc mode: what a task left running as its shell exited is read once more before it is killed (adversary 14
// F2: a 121 MB child left running was killed unread, recorded 4–67 MB, or not at all when no watch had come in
// its life). A real process: a python child that touched 120 MB and holds it.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { TaskAccounting } from '../../../src/worker/accounting.js';
import { readProc } from '../../../src/worker/proc-files.js';

const MB = 1024 * 1024;

describe('TaskAccounting.observeLeftovers (/proc mode)', () => {
  it("counts a leftover's high-water mark and adds its CPU to what the shell's `times` said", async () => {
    const child = spawn(
      'python3',
      ['-c', 'import sys,time; x=b"x"*(120<<20); print(1, flush=True); time.sleep(30)'],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const dir = mkdtempSync(join(tmpdir(), 'jtm-leftover-acct-'));
    try {
      await new Promise(r => child.stdout.once('data', r));
      const times = join(dir, 'task.times');
      // What bash's `times` prints: the shell's own CPU, then its waited-for children's.
      writeFileSync(times, '0m0.010s 0m0.020s\n0m1.500s 0m0.500s\nchildren 100.5 \n');
      const acct = new TaskAccounting('procfs', undefined, undefined, times);
      await acct.readShellExit();
      expect(acct.usage().cpuSeconds).toBeCloseTo(2.03, 5);
      const leftover = readProc(child.pid!)!;
      acct.observeLeftovers([leftover]);
      const u = acct.usage();
      expect(u.peakBytes).toBeGreaterThanOrEqual(120 * MB);
      expect(u.cpuSeconds).toBeCloseTo(2.03 + leftover.cpuTicks / 100, 5);
      // Nothing left: nothing changes.
      acct.observeLeftovers([]);
      expect(acct.usage()).toEqual(u);
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
