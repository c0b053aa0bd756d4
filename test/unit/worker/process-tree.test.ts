import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { describe, expect, it } from 'vitest';

import { EscapeScanner, findByToken, tokenRounds } from '../../../src/worker/task-token.js';
import { parseStat, readProc } from '../../../src/worker/proc-files.js';
import { ProcessTree } from '../../../src/worker/process-tree.js';
import { signalAll } from '../../../src/worker/signal-procs.js';
import { pidPlacement, spawnAtPid } from '../../helpers/processes.js';
import { SKIP_MARK } from '../../helpers/requirements.js';

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

/** A child's exit, once Node has reaped it (its pid is free again). */
function exited(child: ChildProcess): Promise<void> {
  return new Promise(resolve => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

const placement = pidPlacement();
// Not describeIf: CI's runner may be root without the right to place pids, and this is no reason to fail it.
(placement.available ? describe : describe.skip)(
  `a pid handed out again${placement.available ? '' : `${SKIP_MARK}${placement.reason}]`}`,
  () => {
    it("is not taken for the task's root once the root has gone", async ({ skip }) => {
      // Seen: a task's end (leftover grace, kill loop) walked the tree from its root pid again after the root
      // had exited; with pids wrapping every few seconds on a busy node (pid_max 32768), another task's `sleep`
      // had that pid, was taken for a leftover and killed alone, and its shell ran the rest of its script
      // (adversary 16 Q1: outputs and rc 0 from a run JTM had stopped).
      const root = spawn('sleep', ['30'], { stdio: 'ignore' });
      const tree = new ProcessTree(root.pid!);
      expect(tree.refresh().map(p => p.pid)).toEqual([root.pid]);
      root.kill('SIGKILL');
      await exited(root);
      expect(tree.refresh()).toEqual([]);
      const stranger = await spawnAtPid(root.pid!, ['sleep', '30']);
      // A node forking without pause may take the pid first every time (a loaded CI runner): nothing to test then.
      if (!stranger) return skip();
      try {
        expect(tree.refresh()).toEqual([]);
        expect(tree.pids()).toEqual([]);
      } finally {
        stranger?.kill('SIGKILL');
      }
    });

    it('is not signalled for the process listed before it (a second round of a kill)', async ({ skip }) => {
      // The pty host's second SIGKILL round, and a kill's TERM and CONT after its group's, reached whoever had
      // the pid of a task process that had died of the first signal (adversary 17 R2, R3).
      const first = spawn('sleep', ['30'], { stdio: 'ignore', detached: true });
      const listed = readProc(first.pid!)!;
      // Start times are in clock ticks (10 ms): a process younger than one tells nothing apart.
      await sleep(50);
      first.kill('SIGKILL');
      await exited(first);
      const stranger = await spawnAtPid(listed.pid, ['sleep', '30']);
      if (!stranger) return skip();
      try {
        signalAll([listed], 'SIGKILL');
        await sleep(100);
        expect(stranger.exitCode === null && stranger.signalCode === null, 'the stranger alive').toBe(true);
      } finally {
        stranger.kill('SIGKILL');
      }
    });

    it('is not reported with the task token of the process that had it before', async ({ skip }) => {
      const token = 'a'.repeat(24);
      const scanner = new EscapeScanner();
      const first = spawn('sleep', ['30'], {
        stdio: 'ignore',
        env: { ...process.env, JTM_TASK_TOKEN: token },
      });
      try {
        await waitUntil(
          () =>
            scanner
              .scan(new Set([token]))
              .get(token)
              ?.includes(first.pid!) ?? false,
        );
      } finally {
        first.kill('SIGKILL');
      }
      await exited(first);
      // A start time is counted in clock ticks (10 ms): a process at the same pid started within the same tick
      // cannot be told apart by it (a whole pid_max of forks in 10 ms: only this test's placing does that, and
      // made the row fail once in three runs under load).
      await sleep(30);
      // Handed out again before the next scan lists the pid as gone.
      const stranger = await spawnAtPid(first.pid!, ['sleep', '30']);
      // A node forking without pause may take the pid first every time (a loaded CI runner): nothing to test then.
      if (!stranger) return skip();
      try {
        expect(scanner.scan(new Set([token])).get(token) ?? []).toEqual([]);
      } finally {
        stranger?.kill('SIGKILL');
      }
    });
  },
);

async function waitUntil(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await sleep(20);
  expect(check()).toBe(true);
}

describe("a lost run's kill rounds (tokenRounds)", () => {
  it('finds what carries the token at the first round, later ones what was born since, and keeps what it found', async () => {
    const token = `rounds-${process.pid}-${Date.now()}`;
    const env = { ...process.env, JTM_TASK_TOKEN: token };
    const kids: ChildProcess[] = [];
    try {
      // One that clears its environment after the first round (exec env -i): still the run's.
      const first = spawn('sh', ['-c', 'sleep 0.4; exec env -i sleep 30'], { env, stdio: 'ignore' });
      kids.push(first);
      await sleep(100);
      const rounds = tokenRounds(token);
      // The shell and its `sleep 0.4`.
      expect(rounds().map(p => p.pid)).toContain(first.pid);
      const second = spawn('sleep', ['30'], { env, stdio: 'ignore' });
      kids.push(second);
      const stranger = spawn('sleep', ['30'], { stdio: 'ignore' });
      kids.push(stranger);
      await sleep(600);
      const found = rounds().map(p => p.pid);
      expect(found.sort()).toEqual([first.pid, second.pid].sort());
      // The old full scan by token no longer sees the first: its environment was cleared.
      expect(findByToken(token).map(p => p.pid)).toEqual([second.pid]);
      second.kill('SIGKILL');
      await sleep(100);
      expect(rounds().map(p => p.pid)).toEqual([first.pid]);
    } finally {
      for (const k of kids) k.kill('SIGKILL');
    }
  });
});
