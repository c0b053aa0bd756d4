import { UnrecoverableError, WaitingError, type Job } from 'bullmq';

import type { JtmContext } from '../context.js';
import type { Logger } from '../logger.js';
import { isCredentialsRefusal, isOutageRefusal } from '../redis/replies.js';
import { retryWhile } from '../redis/retry-unreachable.js';
import { endTask } from '../tasks/end-task.js';
import type { TaskJob } from '../tasks/job-data.js';
import type { Fence } from '../store/task-store.js';
import { statusName, TaskStatus } from '../tasks/status.js';
import { wallNow } from '../wall-clock.js';
import type { TaskOutcome, TaskRun } from './task-run.js';

/**
 * Records how a run ended — exactly once, through the transition from running fenced on this execution
 * (`fence`): a final status, or back to pending with the job given back to the queue (the worker stopped
 * first, which spends no retry), or nothing when another execution owns the task now (taken over after this
 * worker was paused, or recovered by the manager). `extra`: record fields written with the status (one fenced
 * write per end): where stdout went and its size, the pid of a short run. `now`: when the run ended, the time its
 * end is stamped with (ended_at, the history entry), however late Redis takes the write. Returns the BullMQ job's
 * return value.
 */
export async function recordOutcome(
  ctx: JtmContext,
  log: Logger,
  job: Job<TaskJob>,
  token: string | undefined,
  run: TaskRun,
  outcome: TaskOutcome,
  fence: Fence,
  extra: Record<string, string | number | undefined> = {},
  now = wallNow(),
): Promise<unknown> {
  const id = run.id;
  const usage = {
    peak_rss_mb: run.sampleState ? Math.round(run.sampleState.peakRssBytes / 1048576) : undefined,
    cpu_time_s: run.sampleState ? run.sampleState.cpuTicks / 100 : undefined,
    leftover_pids: outcome.leftovers.length > 0 ? outcome.leftovers.join(',') : undefined,
    ...extra,
  };
  if (outcome.kind === 'abandon') {
    log.warn({ task: id }, outcome.reason);
    // Not finished through BullMQ: with the whole data lost its job is gone too (finishing would only fail,
    // "Missing key for job", with a stack); with the record alone lost, the job's lock lapses and the stalled
    // check hands it to a worker whose start finds no record and drops it.
    if (outcome.recordGone) {
      // Its output and samples were written after the loss, so nothing will ever expire them with a record:
      // they expire as a record's would (sent after the sampler's last writes, on the same connection).
      const keys = [ctx.keys.taskOutput(id), ctx.keys.taskResources(id)];
      const ms = String(ctx.config.taskRetentionMs);
      await Promise.all(keys.map(k => ctx.redis.pexpire(k, ms))).catch(err =>
        log.debug({ err, task: id }, 'output and samples of a vanished task left without expiry'),
      );
      throw new WaitingError();
    }
    return { abandoned: true };
  }
  if (outcome.kind === 'requeue') {
    const moved = await untilAccepted(log, id, () =>
      endTask(ctx, id, {
        fence,
        to: TaskStatus.pending,
        reason: outcome.reason,
        fields: usage,
        now,
      }),
    );
    log.info({ task: id, requeued: moved.done }, outcome.reason);
    if (moved.done) {
      // The lock lapses while Redis is out of reach: BullMQ's stalled check then re-delivers the job itself.
      await job.moveToWait(token).catch(err => log.warn({ task: id, err }, 'job left to the stalled check'));
      throw new WaitingError();
    }
    return { requeued: false };
  }
  // Ended by JTM (timed out, never started, killed because its pool was removed): Cromwell's script wrote
  // no rc, so JTM does (when it knows where): endTask's rc decision, which writes nothing for a normal end.
  const res = await untilAccepted(log, id, () =>
    endTask(ctx, id, {
      fence,
      to: outcome.status,
      reason: outcome.reason,
      fields: { exit_code: outcome.exitCode, ...usage },
      now,
    }),
  );
  if (!res.done) {
    log.warn(
      { task: id, current: res.current },
      'another execution owns the task, or it ended: result dropped',
    );
    return { dropped: true };
  }
  log.info({ task: id, status: outcome.status, exitCode: outcome.exitCode }, 'task ended');
  const result = { status: outcome.status, exit_code: outcome.exitCode };
  // A task that did not succeed is a failed job too, so BullMQ's own views (bull-board) list it as failed.
  // Unrecoverable: BullMQ must not retry it — what runs again is decided by the task record alone.
  if (outcome.status !== TaskStatus.success) {
    throw new TaskUnsuccessful(`${statusName(outcome.status)}: ${outcome.reason}`);
  }
  return result;
}

/** The job of a task that ended in a status other than success; recorded already, not an error of the worker. */
export class TaskUnsuccessful extends UnrecoverableError {
  constructor(message: string) {
    super(message);
    this.name = 'TaskUnsuccessful';
    // What the dashboard shows as the job's error: the task's status and reason, not a worker stack trace.
    this.stack = `${this.name}: ${message}`;
  }
}

/** How long the end of a run is retried while Redis refuses writes, and the longest pause between tries. */
const REFUSED_RETRY_MS = 30 * 60_000;
const REFUSED_MAX_PAUSE_MS = 5000;

/**
 * Runs the write that records a run's end (or a read it depends on), again while Redis refuses for a while
 * (isOutageRefusal):
 * a Redis full for 15 s refused the give-back of a run its worker had stopped, and the task stayed `running`
 * on a live worker, with no process, for ever (the heartbeat came back, so nothing recovered it). The write is
 * fenced on the execution: retried late, it is refused if another execution owns the task by then. A refusal of
 * the worker's credentials (a password rotated under it) is waited out too: thrown, the run's end was lost, and
 * once the password was put back the job's redelivery took the task over as "worker … was lost" (adversary 24 F2).
 */
export function untilAccepted<T>(log: Logger, id: number, write: () => Promise<T>): Promise<T> {
  return retryWhile(write, {
    retryable: isOutageRefusal,
    retryMs: REFUSED_RETRY_MS,
    firstPauseMs: 250,
    maxPauseMs: REFUSED_MAX_PAUSE_MS,
    onRetry: (err, tries) => {
      if (tries % 12 === 0)
        log.warn(
          { task: id, err: (err as Error).message },
          isCredentialsRefusal(err)
            ? "Redis refuses this worker's credentials: the task's end is written again once it takes them"
            : "Redis refuses writes: the task's end is written again",
        );
    },
  });
}
