import { setTimeout as sleep } from 'node:timers/promises';

import type { JtmContext } from '../context.js';
import type { Logger, RepeatLogger } from '../logger.js';
import { TaskStatus } from '../tasks/status.js';
import { fullDiskReason } from './disk-space.js';
import { afterHostLoss, afterLeaseLoss } from './lease-losses.js';
import { recordOutOfMemory } from './memory-limit.js';
import { untilAccepted } from './record-outcome.js';
import { NODE_SHORT_PAUSE_MS, type TaskAdmission } from './task-admission.js';
import type { TaskOutcome, TaskRun } from './task-run.js';

/** Fields a run's end writes with its status (one fenced write). */
export type EndFields = Record<string, string | number | undefined>;

/** What settleOutcome needs of its worker. */
export interface SettleContext {
  ctx: JtmContext;
  log: Logger;
  logRepeat: RepeatLogger;
  logDisk: RepeatLogger;
  workerId: string;
  slurmJobId: number;
  admission: TaskAdmission;
  /** The worker's own stop has begun. */
  stopping(): boolean;
  /** The worker was stopped by a signal (SIGTERM, SIGHUP, Slurm's end), not by its own idle or life timer. */
  signalled(): boolean;
}

/**
 * How many times a task may be given back because its worker was stopped by a signal while it ran: the worker
 * stopped for the last of them ends it instead. A task that SIGTERMs its worker (`kill $PPID`'s parent, `pkill
 * node`) looks like an operator's stop to the worker (a signal does not say who sent it), was given back without a
 * retry spent, and stopped the next worker, and the next: every worker of its pool in seconds, the pool's other tasks
 * stranded (adversary 10 K6). Ended by the next worker that claimed it, it stayed pending for good once no worker
 * was left (adversary 36 H1: three workers stopped, check-worker 0). A task preempted this many times ends the same
 * way, and so does one beside the culprit (docs/reliability.md).
 */
export const STOP_GIVEBACK_LIMIT = 3;

/** The reason of a task ended by STOP_GIVEBACK_LIMIT. */
export function stopLimitReason(times: number): string {
  return `its worker was stopped by a signal while it ran, ${times} times (a task that signals its worker, kill or pkill node, stops every worker of its pool): not run again`;
}

/** Exit code of a shell whose command died of SIGTERM (128 + 15). */
const SIGTERM_EXIT = 143;
/** How long after a task's death by SIGTERM (or its pty host's) the worker's own stop is waited for. */
// Generous: on a loaded node the worker's own SIGTERM may be handled seconds after the task died of its own,
// and waiting only delays recording a task that really did die of a stray SIGTERM.
const STOP_SIGNAL_WINDOW_MS = 5000;

/**
 * What a run's outcome becomes once the worker's circumstances are taken into account — its stop, its pty host's
 * death or watchdog, its lease, the node and the disk — with the fields the end writes beside it. The run's
 * processes are gone and its output is read; nothing is recorded here.
 */
export async function settleOutcome(
  s: SettleContext,
  run: TaskRun,
  first: TaskOutcome,
  fields: EndFields,
): Promise<{ outcome: TaskOutcome; endFields: EndFields }> {
  const { ctx, log } = s;
  const data = run.data;
  let outcome = first;
  let endFields = fields;
  // The pty host killed the task while this worker was stopped (SIGSTOP, hung): give it back only if it is
  // still this worker's; otherwise another worker has taken it over, and nothing may be recorded.
  if (outcome.kind === 'requeue' && outcome.watchdog) {
    const [status, owner, runToken] = await untilAccepted(log, data.id, () =>
      ctx.redis.hmget(ctx.keys.task(data.id), 'status', 'worker_id', 'run_token'),
    );
    if (status !== String(TaskStatus.running) || owner !== s.workerId || runToken !== run.token) {
      outcome = { kind: 'abandon', reason: outcome.reason, leftovers: outcome.leftovers };
    }
  }
  // When Slurm ends an allocation (scancel, walltime, preemption) it sends SIGTERM to every process of the
  // job at once: the task may die of it before this worker has handled its own SIGTERM. Such a task is
  // given back to the queue, not failed; so is one killed by a SIGTERM to every process of the user (a
  // task's `kill -- -1`), and one whose pty host died as the worker was being stopped.
  if (outcome.kind === 'final' && dueToStop(outcome)) {
    if (await becomesTrue(s.stopping, STOP_SIGNAL_WINDOW_MS)) {
      const reason =
        s.slurmJobId > 0 ? 'Slurm ended the allocation' : 'worker shut down before the task ended';
      outcome = { kind: 'requeue', reason, leftovers: outcome.leftovers };
    }
  }
  if (outcome.kind === 'requeue' && outcome.nodeShort) {
    s.admission.pauseForNodeShort();
    s.logRepeat(
      'warn',
      'node short',
      { task: data.id, reason: outcome.reason },
      `task given back, ${outcome.reason}: the node is out of ptys, processes or descriptors; taking no task for ${NODE_SHORT_PAUSE_MS / 1000} s`,
    );
  }
  // Given back because a signal stopped this worker: counted, so that a task that keeps stopping its workers
  // ends (STOP_GIVEBACK_LIMIT) instead of stopping every worker of its pool.
  if (outcome.kind === 'requeue' && s.signalled() && !outcome.watchdog) {
    const times = (data.stop_givebacks ?? 0) + 1;
    endFields = { ...endFields, stop_givebacks: times };
    if (times >= STOP_GIVEBACK_LIMIT) {
      log.error({ task: data.id, stop_givebacks: times }, stopLimitReason(times));
      outcome = {
        kind: 'final',
        status: TaskStatus.lostconnection,
        reason: stopLimitReason(times),
        leftovers: outcome.leftovers,
      };
    }
  }
  // The pty host died under the task, the worker not stopping: not the task's failure (lease-losses.ts).
  if (outcome.kind === 'final' && outcome.hostExited) {
    log.error({ task: data.id, reason: outcome.reason }, "the worker's pty host died under a task");
    const lost = outcome;
    const counted = await untilAccepted(log, data.id, () => afterHostLoss(ctx, data.id, lost));
    outcome = counted.outcome;
    endFields = { ...endFields, ...counted.fields };
  }
  // A failure on a full disk says so: the shell's own message went to the full .err, if anywhere.
  if (outcome.kind === 'final' && outcome.status === TaskStatus.failed) {
    const full = await fullDiskReason([run.stdoutPath, run.stderrPath]);
    if (full) {
      outcome = { ...outcome, reason: `${outcome.reason}; ${full}` };
      s.logDisk('warn', 'task failed on a full disk', { task: data.id }, `task failed: ${full}`);
      s.admission.diskFilled();
    }
  }
  if (outcome.kind === 'final' && outcome.status === TaskStatus.outofresource) {
    await recordOutOfMemory(ctx, log, data, run.stderrPath, outcome.reason);
  }
  // Fenced again and again (beats always late): given back JTM_TASK_RETRIES + 1 times at most, then ended (a run
  // fenced before its command started: UNSTARTED_GIVEBACK_LIMIT times).
  // Its reads wait out a Redis that refuses for a while, as the give-back's write does: the fencing is usually
  // that very refusal (a BUSY script, MISCONF), and a read refused threw the run's end away — the job kept its
  // lock until it lapsed, and the redelivery took the task over as "worker … was lost", a retry spent on a
  // live worker (adversary 24 F1).
  if (outcome.kind === 'requeue' && outcome.fenced) {
    const fenced = outcome;
    const counted = await untilAccepted(log, data.id, () => afterLeaseLoss(ctx, data.id, fenced));
    outcome = counted.outcome;
    endFields = { ...endFields, ...counted.fields };
  }
  return { outcome, endFields };
}

/**
 * A failure that may be the worker's stop reaching the task first, or at once: a SIGTERM (Slurm's to every
 * process of the job; a task's `kill -- -1` or `pkill -u $USER` to every process of the user, adversary 10 K5:
 * the worker's other tasks were recorded failed, exit 143), or a lost pty host. Given back only if the worker
 * does stop within STOP_SIGNAL_WINDOW_MS; a task killed by a SIGTERM of its own waits that long to be recorded.
 */
function dueToStop(outcome: { status: number; exitCode?: number; hostExited?: boolean }): boolean {
  // Failed only: a kill, a timeout or a memory limit of JTM's own ends in SIGTERM too, and is recorded at once
  // (in Slurm such ends waited the 5 s before).
  return (
    outcome.hostExited === true || (outcome.status === TaskStatus.failed && outcome.exitCode === SIGTERM_EXIT)
  );
}

/** Whether `condition` holds within `withinMs` (looked at every 20 ms). */
export async function becomesTrue(condition: () => boolean, withinMs: number): Promise<boolean> {
  for (const deadline = Date.now() + withinMs; !condition();) {
    if (Date.now() >= deadline) return false;
    await sleep(20);
  }
  return true;
}
