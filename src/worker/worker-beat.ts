import type { JtmContext } from '../context.js';
import { discardCause, isRightsError, toError } from '../errors.js';
import type { Logger, RepeatLogger } from '../logger.js';
import { isCredentialsRefusal, isOutageRefusal } from '../redis/replies.js';
import type { Heartbeat } from './heartbeat.js';
import type { LiveState } from './live-state.js';
import { reconcileRuns } from './run-fencing.js';
import type { TaskRun } from './task-run.js';

/** How soon a beat refused by a Redis that takes no writes for now is tried again (a quarter beat if shorter). */
const QUICK_BEAT_MS = 250;

export interface BeatParts {
  ctx: JtmContext;
  workerId: string;
  log: Logger;
  /** The worker's once-per-kind-and-window logger for connection errors. */
  logRepeat: RepeatLogger;
  live: LiveState;
  heartbeat: Heartbeat;
  /** The runs of this worker: the beat names them, then checks that their records still name this worker. */
  runs: ReadonlyMap<number, TaskRun>;
  /** Redis refuses the worker's user a command it needs: the worker stops (startWorker's refusedRights). */
  onRightsRefused: (err: unknown) => void;
  /** Reads again whether the node's memory or the log dir's disk keeps the worker from taking tasks (not awaited). */
  refreshPause: () => void;
}

/**
 * The worker's heartbeat, one at a time: a caller that needs a fresh lease waits for the one in flight. A beat
 * writes the worker's lease and running list, then reconciles its runs with their records (run-fencing.ts).
 */
export function workerBeat(parts: BeatParts): () => Promise<void> {
  const { ctx, log, logRepeat, live, heartbeat, runs } = parts;

  /**
   * Redis refuses this worker's credentials (WRONGPASS, NOAUTH): a password rotated under it, its user disabled or
   * deleted. The worker does not exit: an operator who rotates a password puts the new one in REDIS_URL and restarts
   * the workers, or gives the old one back, and an exit would cost every running task its run for a mistake that may
   * last a minute. It stopped its runs before its lease could lapse (run-fencing.ts), takes no task, and gives the
   * runs back uncounted once Redis takes it again (adversary 24 F2: it stayed up idle and silent, check-worker 0,
   * and its tasks were charged a loss). Said once per JTM_LOG_REPEAT_INTERVAL, so that an operator sees why it is idle.
   */
  const credentialsRefused = (err: unknown): void => {
    live.credentialsRefusedSince ??= Date.now();
    logRepeat(
      'error',
      'credentials refused',
      {
        err: toError(err).message,
        refusedForS: Math.round((Date.now() - live.credentialsRefusedSince) / 1000),
        running: runs.size,
      },
      `Redis refuses this worker's credentials (its password changed, its user disabled, or a password now required?): its running tasks are stopped before its lease lapses and given back without spending a retry once Redis takes it again; it takes no task meanwhile and keeps trying. Put the user's password back, or restart the worker with the new one in REDIS_URL`,
    );
  };

  const beat = (): Promise<void> =>
    (live.beatInFlight ??= (async () => {
      // For the next beat: this one carries the last reading, and never waits for a disk.
      parts.refreshPause();
      const busyPeak = Math.max(live.busyPeak, runs.size);
      live.busyPeak = runs.size;
      try {
        try {
          await heartbeat.beat([...runs.keys()], live.phase, busyPeak);
          if (live.credentialsRefusedSince !== undefined) {
            log.warn(
              { refusedForS: Math.round((Date.now() - live.credentialsRefusedSince) / 1000) },
              "Redis takes this worker's credentials again: it takes tasks again, and the runs it stopped are given back",
            );
            live.credentialsRefusedSince = undefined;
          }
        } catch (err) {
          // Not written: the next beat carries it.
          live.busyPeak = Math.max(live.busyPeak, busyPeak);
          if (isCredentialsRefusal(err)) credentialsRefused(err);
          // Refused by a Redis that takes no writes for now (a BUSY script, MISCONF, READONLY): tried again soon, not
          // a whole interval later. Its alive key may have lapsed meanwhile, and until a beat passes again a manager
          // sweep sees this live worker as dead and charges its tasks a loss (adversary 24 F1).
          if (isOutageRefusal(err) && live.stopping === undefined && live.quickBeat === undefined) {
            live.quickBeat = setTimeout(
              () => {
                live.quickBeat = undefined;
                if (live.stopping === undefined) void beat();
              },
              Math.min(QUICK_BEAT_MS, ctx.config.heartbeatIntervalMs / 4),
            );
          }
          throw err;
        }
        await reconcileRuns(ctx, parts.workerId, runs);
      } catch (err) {
        // A beat refused for the user's rights (PEXPIRE taken from it) is refused for good: the worker could hold
        // no lease, and fenced every run it took (adversary 24 F8: it stayed up, logging EXECABORT).
        if (isRightsError(err)) parts.onRightsRefused(err);
        // Once per kind and window, like the worker's other connection errors: a revoked password failed every
        // beat, a 1 KB line each (45 MB a day per worker).
        logRepeat(
          'warn',
          `heartbeat ${toError(discardCause(err)).message.replace(/\d+/g, '#')}`,
          { err: discardCause(err) },
          'heartbeat failed',
        );
      } finally {
        live.beatInFlight = undefined;
      }
    })());
  return beat;
}
