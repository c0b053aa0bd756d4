// A timeout or kill that comes as the command ends by itself: the command's exit is on its way from the pty
// host (which reaps it and reports it over IPC) when the stop fires, and the stop finds no live process. The
// command's own exit decides (adversarial test 3: a task that exited 0 at 1.99 s of a 2 s timeout was recorded
// `timeout` with exit code 0). Made deterministic by stopping the pty host: the command's root stays an
// unreaped zombie, so its exit cannot arrive before the stop.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { afterAll, describe, expect, it } from 'vitest';

import { silentLogger } from '../../src/logger.js';
import type { TaskJobData } from '../../src/tasks/job-data.js';
import { TaskStatus } from '../../src/tasks/status.js';
import type * as TaskRunModule from '../../src/worker/task-run.js';
import type { StopCause, TaskRun as TaskRunType } from '../../src/worker/task-run.js';
import { tempDir, waitFor } from '../helpers/env.js';

// The built module: its pty host is forked from the file beside it (dist/src/worker/pty-host.js).
const { TaskRun } = (await import(
  new URL('../../dist/src/worker/task-run.js', import.meta.url).href
)) as typeof TaskRunModule;

/** The state letter of process `pid` (Z: exited, not yet reaped), or undefined once it is gone. */
function stateOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.[0];
  } catch {
    return undefined;
  }
}

/** The parent of process `pid` (the pty host, for a task's root process). */
function parentOf(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1]?.split(' ')[1]);
}

function newRun(command: string, leftoverGraceMs = 0): TaskRunType {
  const dir = tempDir();
  const data = { id: 11, command, cwd: dir } as TaskJobData;
  return new TaskRun(data, {
    logDir: dir,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    killGraceMs: 1000,
    leftoverGraceMs,
    logger: silentLogger(),
  });
}

describe('a stop that comes as the command ends by itself', () => {
  let host: number | undefined;
  // The pty host ignores SIGTERM (signals are its worker's to act on) and follows this process only when it
  // exits: ended here, before the file's check for processes left behind.
  afterAll(() => {
    if (host !== undefined) process.kill(host, 'SIGKILL');
    // A leftover of the grace rows that was not there yet when its run ended (see there).
    spawnSync('pkill', ['-KILL', '-f', '^sleep 4412$']);
  });

  it.each<[StopCause, number, Record<string, unknown>]>([
    ['timeout', 0, { status: TaskStatus.success, exitCode: 0 }],
    ['kill', 0, { status: TaskStatus.success, exitCode: 0 }],
    ['timeout', 3, { status: TaskStatus.failed, exitCode: 3 }],
  ])("%s after an exit %i: the command's own end is recorded", async (cause, code, expected) => {
    const run = newRun(`sleep 0.3; exit ${code}`);
    const outcome = run.run();
    const pid = await waitFor(() => run.pid || undefined, 'the command started');
    host = parentOf(pid);
    process.kill(host, 'SIGSTOP');
    try {
      await waitFor(() => stateOf(pid) === 'Z' || undefined, 'the command exited (unreaped)', 5000, 10);
      run.stop(cause);
      // The stop's kill finds nothing alive to signal; give it its turn before the exit can arrive.
      await new Promise(r => setTimeout(r, 200));
    } finally {
      process.kill(host, 'SIGCONT');
    }
    expect(await outcome).toMatchObject({ kind: 'final', ...expected });
  });

  // Review of adversary 13 E1's leftover grace: a stop in the grace (the worker's shutdown, a drain, a lost lease,
  // a leftover over the memory limit) gave back a task whose command had ended: it ran again, its rc read already.
  it.each<StopCause>(['shutdown', 'fenced', 'outofresource', 'kill'])(
    '%s during the leftover grace: the command that ended by itself is recorded, what it left is killed',
    async cause => {
      const run = newRun('setsid sleep 4412 >/dev/null 2>&1 & echo done; exit 0', 10_000);
      const outcome = run.run();
      const pid = await waitFor(() => run.pid || undefined, 'the command started');
      await waitFor(() => stateOf(pid) === undefined || undefined, 'the command to exit', 5000, 10);
      await new Promise(r => setTimeout(r, 200));
      run.stop(cause);
      const o = await outcome;
      // Not given back: the command's own end. (Whether the setsid'd sleep was already there to be found and
      // killed as the run ended depends on the runner's load: its count is not asserted; it is killed below.)
      expect(o).toMatchObject({ kind: 'final', status: TaskStatus.success, exitCode: 0 });
      expect(o.leftovers.length).toBeLessThanOrEqual(1);
    },
  );

  it('a kill that reaches the live command still ends it terminated', async () => {
    const run = newRun('sleep 30');
    const outcome = run.run();
    await waitFor(() => run.pid || undefined, 'the command started');
    run.stop('kill');
    expect(await outcome).toMatchObject({ kind: 'final', status: TaskStatus.terminated });
  });
});
