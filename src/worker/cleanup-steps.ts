import { setTimeout as sleep } from 'node:timers/promises';

import type { Logger } from '../logger.js';

/** One step of a worker's stop: named for the logs, bounded unless it bounds itself. */
export interface CleanupStep {
  readonly name: string;
  /** How long the step may take before the next one runs anyway; none for a step that bounds itself. */
  readonly boundMs?: number;
  run(): unknown;
}

/**
 * Runs the steps in order, each awaited within its bound (as BullMQ's Worker.close()): a step that fails or
 * hangs (Redis unreachable) is logged and the next one still runs, so an exiting worker always gets to the end.
 */
export async function runCleanups(steps: readonly CleanupStep[], log: Logger): Promise<void> {
  for (const step of steps) {
    try {
      // Started at once (a sync throw is caught below): the first step begins in the same tick as stop().
      const done = Promise.resolve(step.run());
      if (step.boundMs === undefined) {
        await done;
      } else if (
        (await bounded(
          done.then(() => true),
          step.boundMs,
        )) === undefined
      ) {
        log.warn({ step: step.name, boundMs: step.boundMs }, 'cleanup step timed out: going on');
      }
    } catch (err) {
      log.warn({ err, step: step.name }, 'cleanup step failed');
    }
  }
}

/** `p`, or nothing once `ms` have passed. */
export async function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  // Aborted once the race is decided, so no timer outlives it (its AbortError goes to the race, which ignores it).
  const timer = new AbortController();
  try {
    return await Promise.race([p, sleep(ms, undefined, { signal: timer.signal })]);
  } finally {
    timer.abort();
  }
}
