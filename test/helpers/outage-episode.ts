// What the tests of a Redis outage under a running task share (redis-refusing-writes, redis-password-rotation):
// one long task whose executions leave a line each in a marker file, and the check that the outage cost it
// nothing — run again once, its stop counted as one of Redis's silences, no retry spent.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { expect } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { runJtm, taskIds } from './cli.js';
import { waitFinalRecord } from './context.js';
import { waitFor } from './env.js';

/** Start lines (`S`) of a task's marker file: one per execution that began. */
export function starts(file: string): number {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(l => l === 'S').length
    : 0;
}

/** Submits an 8 s task to `pool` through `env` and waits until it runs with its pid recorded (read through `ctx`). */
export async function startLongTask(
  env: Record<string, string>,
  ctx: JtmContext,
  pool: string,
  dir: string,
): Promise<{ id: number; marker: string }> {
  const marker = join(dir, 'marker');
  const [id] = taskIds(
    (await runJtm(['submit', '-p', pool, '-cmd', `echo S >> ${marker}; sleep 8; echo E >> ${marker}`], env))
      .stdout,
  );
  await waitFor(() => starts(marker) === 1, 'the task to start');
  await waitFor(async () => (await ctx.tasks.get(id!))?.pid, 'its pid recorded');
  return { id: id!, marker };
}

/** The task ends a success after two executions, its stop counted as Redis's silence and nothing charged. */
export async function expectGivenBackUncounted(
  ctx: JtmContext,
  task: { id: number; marker: string },
  daemonOutput: () => string,
): Promise<void> {
  const rec = await waitFinalRecord(ctx, task.id, 90_000);
  expect(
    [rec.status_name, rec.attempts, rec.losses ?? 0, rec.lease_losses ?? 0, rec.redis_silences],
    `${rec.reason}; ${daemonOutput()}`,
  ).toEqual(['success', 2, 0, 0, 1]);
  expect(starts(task.marker)).toBe(2);
  const events = await ctx.tasks.events(task.id);
  expect(events.map(e => e.reason).join('\n')).toMatch(
    /run stopped before a takeover \(Redis did not answer for \d+\.\d s; not counted against the task\)/,
  );
}
