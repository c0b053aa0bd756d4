import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { describe, expect, it } from 'vitest';

import { parseStat, ProcessTree } from '../../../src/worker/process-tree.js';

const uptime = (): number => Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]);

describe('process tree', () => {
  it('parses /proc/<pid>/stat even with spaces and parentheses in the command name', () => {
    const stat =
      '1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 555 8192000 300 18446744073709551615';
    expect(parseStat(1234, stat)).toMatchObject({
      pid: 1234,
      state: 'S',
      ppid: 1,
      pgid: 1234,
      cpuTicks: 13,
      start: 555,
      vsizeBytes: 8192000,
      rssBytes: 300 * 4096,
    });
  });

  it('adopts the children a shell listed as it exited only if born by the listing and not before the root', async () => {
    // The listing's pids are read after the shell exited: one handed out again since must not be taken
    // (killed as a leftover) for the orphan it was.
    const before = uptime();
    await sleep(50);
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    try {
      await sleep(50);
      const pid = child.pid!;
      const listedEarlier = new ProcessTree(4_194_399);
      listedEarlier.adoptListed([pid], before);
      expect(listedEarlier.pids()).toEqual([]);
      const listedAfter = new ProcessTree(4_194_399);
      listedAfter.adoptListed([pid], uptime());
      expect(listedAfter.pids()).toEqual([pid]);
      // A root born after the listed process: the process is older than the task, not one of its orphans.
      const youngRoot = new ProcessTree(pid);
      youngRoot.refresh();
      youngRoot.adoptListed([process.pid], uptime());
      expect(youngRoot.pids()).toEqual([pid]);
    } finally {
      child.kill();
    }
  });
});
