import { formatHms } from '../durations.js';
import type { Logger } from '../logger.js';

import type { WorkerState } from './heartbeat.js';
import type { TaskRun } from './task-run.js';
import { END_OF_LIFE_MARGIN_MS } from './worker-options.js';

/** Whether the task's time limit ends before the worker's end of life (minus a margin). */
export function fitsInLife(timeoutMs: number | undefined, endOfLife: number | undefined): boolean {
  if (endOfLife === undefined) return true;
  const left = endOfLife - Date.now() - END_OF_LIFE_MARGIN_MS;
  if (timeoutMs === undefined) return left > 0;
  return timeoutMs <= left;
}

/**
 * Why a task was left for a worker with more time, in the numbers the worker decided by: `cut`, a draining
 * worker's test (the task would end after the end of life), else fitsInLife's (its limit within the life left less
 * the margin). One message said "its time limit is longer than what is left" for a 10 s task on a worker with 37 s
 * left (the margin unnamed), and for a task without any limit (adversary 15 P11b).
 */
export function outliveWhy(timeoutMs: number | undefined, endOfLife: number, cut: boolean): string {
  const left = formatHms(Math.max(0, endOfLife - Date.now()));
  const margin = `the ${END_OF_LIFE_MARGIN_MS / 1000} s kept at the end`;
  if (timeoutMs === undefined) {
    return cut
      ? `it has no time limit and this worker is draining, with ${left} left`
      : `it has no time limit and this worker has ${left} left, less than ${margin}`;
  }
  const limit = `its time limit is ${formatHms(timeoutMs)}`;
  return cut
    ? `${limit} and this worker is draining, with ${left} left`
    : `${limit}, more than the ${left} this worker has left less ${margin}`;
}

/** A running task the end of life would cut: one without a time limit, or whose limit ends after it. */
export function wouldBeCut(run: TaskRun, endOfLife: number | undefined): boolean {
  return wouldBeCutData(run.data.timeout_ms, endOfLife, run.startedAt);
}

/** A task (by its time limit) that the end of life would cut if it started at `startedAt`. */
export function wouldBeCutData(
  timeoutMs: number | undefined,
  endOfLife: number | undefined,
  startedAt = Date.now(),
): boolean {
  if (endOfLife === undefined) return false;
  if (timeoutMs === undefined) return true;
  return startedAt + timeoutMs > endOfLife;
}

/** What the life timer reads of the worker on each tick, and what it calls. */
export interface LifeWatch {
  readonly idleTimeoutMs: number | undefined;
  readonly endOfLife: number | undefined;
  readonly log: Logger;
  /** Whether stop() has been called already. */
  isStopping(): boolean;
  runningCount(): number;
  lastBusy(): number;
  state(): WorkerState;
  onIdle(): void;
  /** Whether it is idle only because every task it was handed would outlive it (it then stops as if idle). */
  outlived(): boolean;
  /** The end of life is near (within the margin): take no task that it would cut. */
  onEndOfLife(): void;
  /** The end of life has come: stop. */
  onLifeOver(): void;
}

/**
 * Idle timeout and end of life, checked every second apart from the heartbeat: they must act even while
 * Redis is unreachable (an idle worker whose Redis is gone should give its allocation back, not hold it to
 * walltime). The timer is unref'd: it never keeps the process alive by itself.
 */
export function startLifeTimer(w: LifeWatch): NodeJS.Timeout {
  const timer = setInterval(() => {
    if (
      w.idleTimeoutMs !== undefined &&
      !w.isStopping() &&
      w.runningCount() === 0 &&
      Date.now() - w.lastBusy() > w.idleTimeoutMs
    ) {
      w.log.info({ idleMs: Date.now() - w.lastBusy() }, 'idle timeout: stopping');
      w.onIdle();
    } else if (!w.isStopping() && w.runningCount() === 0 && w.outlived()) {
      w.log.info(
        { idleMs: Date.now() - w.lastBusy() },
        "no task of its pool fits in this worker's remaining life: stopping (its allocation is given back)",
      );
      w.onIdle();
    }
    if (
      w.endOfLife !== undefined &&
      w.state() === 'running' &&
      Date.now() > w.endOfLife - END_OF_LIFE_MARGIN_MS
    ) {
      w.onEndOfLife();
    }
    // A worker past its life takes nothing (every task would outlive it), yet it counted as live capacity
    // (check-worker, pools) for ever when nothing ended it: a hand-started `--lifetime` worker (adversary 5).
    if (w.endOfLife !== undefined && !w.isStopping() && Date.now() >= w.endOfLife) {
      w.log.info({ endOfLife: new Date(w.endOfLife).toISOString() }, 'end of life reached: stopping');
      w.onLifeOver();
    }
  }, 1000);
  timer.unref();
  return timer;
}
