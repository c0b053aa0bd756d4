import type { JtmContext } from '../context.js';
import { TaskStatus } from '../tasks/status.js';
import type { TaskOutcome } from './task-run.js';

/** Give-backs for Redis's own silence a task may have before it is ended lostconnection (afterLeaseLoss). */
export const REDIS_SILENCE_LIMIT = 10;

/**
 * Give-backs of runs fenced before their command started a task may have before it is ended lostconnection
 * (afterLeaseLoss), if JTM_TASK_RETRIES + 1 is not higher. Nothing ran, so they are not a lost execution: a slow
 * link to Redis at the moment of the claim (500 ms a write for 20 s) gave back a few runs of a task "not started",
 * counted as lease losses, and with no retries left the next such give-back ended a task whose command never ran
 * (adversary 26 F3). Bounded all the same, for a worker whose lease lapses between every claim and its start (a
 * Redis answering 300 ms each way under a 1.5 s lease: not one start in a minute): each give-back is a claim and a
 * beat's round trip or more (≈ 4 s in that case), so 20 are over a minute of such a worker, longer than one
 * network episode gives one task (at most 5 in a 20 s one at that pace).
 */
export const UNSTARTED_GIVEBACK_LIMIT = 20;

/**
 * What a run stopped by self-fencing becomes. Giving the task back spends no retry (a Redis restart or a short
 * outage must not cost one), but a worker whose beats are always late (a heartbeat too short for its host, a
 * node swapping) would stop the task, take it again and stop it again forever: the command ran 44 times in 16 s
 * with `-hb 5ms`. So each such give-back is counted in the record (`lease_losses`), and once the task has been
 * given back JTM_TASK_RETRIES + 1 times the next fencing ends it `lostconnection` instead. A run fenced before
 * its command started is counted apart (`unstarted_givebacks`, UNSTARTED_GIVEBACK_LIMIT). Read only when a run
 * was fenced (rare); the write that records it is the run's own fenced end.
 */
export async function afterLeaseLoss(
  ctx: JtmContext,
  id: number,
  outcome: Extract<TaskOutcome, { kind: 'requeue' }>,
): Promise<{
  outcome: TaskOutcome;
  fields: { lease_losses?: number; redis_silences?: number; unstarted_givebacks?: number };
}> {
  // Fenced before its command started: nothing ran, whoever's the silence was. Counted apart, never as a lost
  // execution (a network episode at the claim must not push a task that never ran towards lostconnection).
  if (outcome.unstarted) return afterUnstartedGiveback(ctx, id, outcome);
  // Redis silent while the worker kept asking (run-fencing.ts): an outage, not this worker's lateness. Not
  // counted against the task's retries, but bounded all the same: whatever makes Redis silent at each run of one
  // task (a task that floods the node's link, or starves a Redis on its own node) must not loop it for ever.
  if (outcome.redisSilentMs !== undefined) {
    const seconds = (outcome.redisSilentMs / 1000).toFixed(1);
    const [silences] = await ctx.redis.hmget(ctx.keys.task(id), 'redis_silences');
    const n = countOf(ctx, id, silences) + 1;
    if (n <= REDIS_SILENCE_LIMIT) {
      return {
        outcome: {
          ...outcome,
          reason: `${outcome.reason} (Redis did not answer for ${seconds} s; not counted against the task)`,
        },
        fields: { redis_silences: n },
      };
    }
    return {
      outcome: {
        kind: 'final',
        status: TaskStatus.lostconnection,
        reason: `Redis did not answer its worker ${n} times while the task ran (the last for ${seconds} s): stopped, not run again`,
        leftovers: outcome.leftovers,
      },
      fields: { redis_silences: n },
    };
  }
  const [before, maxRetries] = await ctx.redis.hmget(ctx.keys.task(id), 'lease_losses', 'max_retries');
  const n = countOf(ctx, id, before) + 1;
  // One more give-back than retries: a give-back by fencing spends none.
  const allowed = countOf(ctx, id, maxRetries) + 1;
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

/** afterLeaseLoss for a run fenced before its command started (UNSTARTED_GIVEBACK_LIMIT). */
async function afterUnstartedGiveback(
  ctx: JtmContext,
  id: number,
  outcome: Extract<TaskOutcome, { kind: 'requeue' }>,
): Promise<{ outcome: TaskOutcome; fields: { unstarted_givebacks: number } }> {
  const [before, maxRetries] = await ctx.redis.hmget(ctx.keys.task(id), 'unstarted_givebacks', 'max_retries');
  const n = countOf(ctx, id, before) + 1;
  // Never stricter than for runs that did start (JTM_TASK_RETRIES + 1 lease losses).
  const allowed = Math.max(UNSTARTED_GIVEBACK_LIMIT, countOf(ctx, id, maxRetries) + 1);
  const silence =
    outcome.redisSilentMs === undefined
      ? ''
      : `Redis did not answer for ${(outcome.redisSilentMs / 1000).toFixed(1)} s; `;
  if (n <= allowed) {
    return {
      outcome: {
        ...outcome,
        reason: `${outcome.reason} (${silence}nothing ran: not counted against the task)`,
      },
      fields: { unstarted_givebacks: n },
    };
  }
  return {
    outcome: {
      kind: 'final',
      status: TaskStatus.lostconnection,
      reason: `its worker lost its lease on Redis between a claim and its command's start ${n} times (those runs never started it): not tried again`,
      leftovers: outcome.leftovers,
    },
    fields: { unstarted_givebacks: n },
  };
}

/**
 * What a run becomes when the worker's pty host died under it (killed from outside, by one of the tasks — a
 * `kill $PPID`, a `pkill node`, a `kill -STOP $PPID` — or by the OOM killer): its processes got SIGHUP with
 * the host's ptys, so the failure is the worker's, and the task is given back like a run lost with its
 * worker. Which of the host's tasks caused it cannot be told, so:
 * - a host that held several tasks: each is given back without spending a retry, the first time only, and
 *   marked (`host_deaths`); a marked task runs in a pty host of its own from then on (task-run.ts);
 * - a host that held this task alone (its own, or the shared one with nothing else on it), or a task already
 *   marked: counted in `losses`, the budget the manager's recovery and a takeover spend (JTM_TASK_RETRIES),
 *   and ended `lostconnection` once it is spent.
 * A task that kills its host at each run thus ends after its retries, alone, and the tasks that merely shared
 * the host with it run again once and succeed (before, each death was charged to all of them: beside a
 * culprit that was re-run with them, they all ended `lostconnection`).
 */
export async function afterHostLoss(
  ctx: JtmContext,
  id: number,
  outcome: Extract<TaskOutcome, { kind: 'final' }>,
): Promise<{ outcome: TaskOutcome; fields: { losses?: number; host_deaths: number } }> {
  const [losses, maxRetries, deaths] = await ctx.redis.hmget(
    ctx.keys.task(id),
    'losses',
    'max_retries',
    'host_deaths',
  );
  const hostDeaths = countOf(ctx, id, deaths) + 1;
  const others = (outcome.hostTasks ?? 1) - 1;
  if (others > 0 && hostDeaths === 1) {
    return {
      outcome: {
        kind: 'requeue',
        reason: `re-queued without spending a retry: ${outcome.reason}; it shared the host with ${others} other task${others === 1 ? '' : 's'}, so it runs in a pty host of its own from now on`,
        leftovers: outcome.leftovers,
      },
      fields: { host_deaths: hostDeaths },
    };
  }
  const n = countOf(ctx, id, losses) + 1;
  const allowed = countOf(ctx, id, maxRetries);
  if (n <= allowed) {
    return {
      outcome: {
        kind: 'requeue',
        reason: `re-queued: ${outcome.reason} (${n} of ${allowed} retries used)`,
        leftovers: outcome.leftovers,
      },
      fields: { losses: n, host_deaths: hostDeaths },
    };
  }
  return {
    outcome: {
      kind: 'final',
      status: TaskStatus.lostconnection,
      reason: `${outcome.reason}: no retries left (JTM_TASK_RETRIES ${allowed})`,
      leftovers: outcome.leftovers,
    },
    fields: { losses: n, host_deaths: hostDeaths },
  };
}

/**
 * A count read from the task's record: absent is 0. Anything else that is not a count is 0 too, said in the log:
 * a read that gave something else made a silence counted `NaN`, and `NaN <= limit` is false, so the task ended
 * lostconnection "Redis did not answer its worker NaN times" after one or two silences (adversary 28 F3). That
 * reading was reproduced (s19) only through a test proxy that delayed each chunk on a timer of its own: when its
 * delay dropped, later chunks overtook earlier ones, the byte stream itself reordered (no TCP link does that), and
 * ioredis matched replies to the wrong commands: HMGET gave "OK" or "QUEUED" (read as "O", "Q"), or another
 * command's number, and a task ran the command `undefined`. The same flapping through an order-keeping proxy gave
 * no such reading. So no guard here can make such a link safe; this one keeps a stray reply from ending a task.
 */
function countOf(ctx: JtmContext, id: number, value: unknown): number {
  if (value === null || value === undefined) return 0;
  const n = Number(value);
  if (Number.isInteger(n) && n >= 0) return n;
  ctx.logger.warn(
    { task: id, value: String(value).slice(0, 100) },
    'a count in the task record is not a count: taken as 0',
  );
  return 0;
}
