import type { JtmContext } from '../context.js';
import { TaskStatus } from '../tasks/status.js';
import type { TaskOutcome } from './task-run.js';

/**
 * What a run stopped by self-fencing becomes. Giving the task back spends no retry (a Redis restart or a short
 * outage must not cost one), but a worker whose beats are always late (a heartbeat too short for its host, a
 * node swapping) would stop the task, take it again and stop it again forever: the command ran 44 times in 16 s
 * with `-hb 5ms`. So each such give-back is counted in the record (`lease_losses`), and once the task has been
 * given back JTM_TASK_RETRIES + 1 times the next fencing ends it `lostconnection` instead. Read only when a run
 * was fenced (rare); the write that records it is the run's own fenced end.
 */
export async function afterLeaseLoss(
  ctx: JtmContext,
  id: number,
  outcome: Extract<TaskOutcome, { kind: 'requeue' }>,
): Promise<{ outcome: TaskOutcome; fields: { lease_losses: number } }> {
  // One more give-back than retries: a give-back by fencing spends none.
  const { n, allowed } = await countLoss(ctx, id, 'lease_losses', 1);
  if (n <= allowed) return { outcome, fields: { lease_losses: n } };
  return {
    outcome: {
      kind: 'final',
      status: TaskStatus.lostconnection,
      reason: `worker lost its lease on Redis ${n} times (its heartbeats were late each time): stopped, no retries left (JTM_TASK_RETRIES ${allowed - 1})`,
      leftovers: outcome.leftovers,
    },
    fields: { lease_losses: n },
  };
}

/**
 * What a run becomes when the worker's pty host died under it (killed from outside, by one of the tasks — a
 * `kill $PPID`, a `pkill node` — or by the OOM killer): its processes got SIGHUP with the host's ptys, so
 * the failure is the worker's, not the task's, and every task running there is given back like a run lost
 * with its worker: counted in `losses`, the budget the manager's recovery and a takeover spend
 * (JTM_TASK_RETRIES), and ended `lostconnection` once it is spent. A task that kills the host each time it
 * runs thus ends after its retries instead of forever taking its neighbours down with it.
 */
export async function afterHostLoss(
  ctx: JtmContext,
  id: number,
  outcome: Extract<TaskOutcome, { kind: 'final' }>,
): Promise<{ outcome: TaskOutcome; fields: { losses: number } }> {
  const { n, allowed } = await countLoss(ctx, id, 'losses', 0);
  if (n <= allowed) {
    return {
      outcome: {
        kind: 'requeue',
        reason: `re-queued: ${outcome.reason} (${n} of ${allowed} retries used)`,
        leftovers: outcome.leftovers,
      },
      fields: { losses: n },
    };
  }
  return {
    outcome: {
      kind: 'final',
      status: TaskStatus.lostconnection,
      reason: `${outcome.reason}: no retries left (JTM_TASK_RETRIES ${allowed})`,
      leftovers: outcome.leftovers,
    },
    fields: { losses: n },
  };
}

/** The task's count in `field` with this loss (n), and how many the task allows (its retries + `extra`). */
async function countLoss(
  ctx: JtmContext,
  id: number,
  field: 'losses' | 'lease_losses',
  extra: number,
): Promise<{ n: number; allowed: number }> {
  const [before, maxRetries] = await ctx.redis.hmget(ctx.keys.task(id), field, 'max_retries');
  return { n: Number(before ?? 0) + 1, allowed: Number(maxRetries ?? 0) + extra };
}
