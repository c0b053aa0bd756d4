// A run must not start its command once the worker's lease is past (less the fencing margin) or once a stop
// was asked for while it prepared (its directory and output files are awaited first): a worker frozen there
// and resumed after another worker took the task over would run a second live copy (chaos seed 1303).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../../src/logger.js';
import type { TaskJobData } from '../../../src/tasks/job-data.js';
import { TaskStatus } from '../../../src/tasks/status.js';
import { monotonicMs } from '../../../src/worker/monotonic.js';
import { TaskRun, type StopCause } from '../../../src/worker/task-run.js';
import { tempDir } from '../../helpers/env.js';

function newRun(startDeadline?: () => number): { run: TaskRun; marker: string } {
  const dir = tempDir();
  const marker = join(dir, 'started');
  const data = { id: 7, command: `touch ${marker}`, cwd: dir } as TaskJobData;
  const run = new TaskRun(data, {
    logDir: dir,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
    killGraceMs: 1000,
    logger: silentLogger(),
    ...(startDeadline ? { startDeadline } : {}),
  });
  return { run, marker };
}

describe('a run that must not start', () => {
  it('past its start deadline (the lease): given back as fenced, no retry spent, nothing started', async () => {
    const { run, marker } = newRun(() => monotonicMs() - 1);
    const outcome = await run.run();
    expect(outcome).toMatchObject({ kind: 'requeue', leftovers: [] });
    expect(outcome.reason).toMatch(/lost its lease/);
    expect(run.stoppedBy).toBe('fenced');
    expect(run.pid).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });

  it.each<[StopCause, Record<string, unknown>]>([
    ['fenced', { kind: 'requeue' }],
    ['superseded', { kind: 'abandon' }],
    ['shutdown', { kind: 'requeue' }],
    ['kill', { kind: 'final', status: TaskStatus.terminated }],
  ])('stopped (%s) while it prepared: ends as the stop says, nothing started', async (cause, expected) => {
    // The deadline is read after the awaits: the stop comes in between, as a resumed worker's fencing would.
    const { run, marker } = newRun(() => monotonicMs() + 60_000);
    const outcome = run.run();
    run.stop(cause);
    expect(await outcome).toMatchObject({ ...expected, leftovers: [] });
    expect(run.pid).toBe(0);
    expect(existsSync(marker)).toBe(false);
  });
});
