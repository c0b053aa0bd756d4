import type { Logger } from '../logger.js';

import type { JtmContext } from '../context.js';
import { TaskStatus } from '../tasks/status.js';
import type { Heartbeat } from './heartbeat.js';
import { monotonicMs } from './monotonic.js';
import type { TaskRun } from './task-run.js';

/**
 * Kill requests missed on pub/sub, and tasks that another worker has taken over (fencing): re-reads the
 * record of every run of this worker (one pipeline) and stops those it no longer owns or that must be killed.
 */
export async function reconcileRuns(
  ctx: JtmContext,
  workerId: string,
  runs: ReadonlyMap<number, TaskRun>,
): Promise<void> {
  if (runs.size === 0) return;
  const ids = [...runs.keys()];
  const pipeline = ctx.redis.pipeline();
  for (const id of ids)
    pipeline.hmget(ctx.keys.task(id), 'status', 'worker_id', 'kill_requested', 'run_token');
  const res = (await pipeline.exec()) ?? [];
  const missing: TaskRun[] = [];
  res.forEach(([err, v], i) => {
    const run = runs.get(ids[i] as number);
    if (err || !run || !Array.isArray(v)) return;
    const [status, owner, kill, runToken]: (string | null)[] = v;
    const owned = status === String(TaskStatus.running) && owner === workerId && runToken === run.token;
    if (status === null) missing.push(run);
    else {
      run.recordMissing = false;
      if (!owned) run.stop('superseded');
      else if (kill === '1') run.stop('kill');
    }
  });
  // A record read as missing is asked for again on its own, and a run is stopped only when its record is missing
  // at two reconciles in a row: a Redis Cluster moving the shard's slot answered a live record as missing (the
  // pipeline sent on to the slot's new node, where that key had not arrived yet), and the worker stopped a run
  // that then stayed `running` with no process, and ran again charged a loss (adversary 40 H2). A flush or a
  // restart without data is for good: the run stops one beat later.
  for (const run of missing) {
    const gone = (await ctx.redis.exists(ctx.keys.task(run.id)).catch(() => 1)) === 0;
    if (gone && run.recordMissing) run.stop('vanished');
    run.recordMissing = gone;
  }
}

/**
 * Self-fencing: a worker whose beats have not succeeded for most of its lease (Redis paused, restarting or
 * out of reach) stops its runs before the alive key can expire on the Redis side, where another worker or
 * the manager would take the tasks over: a takeover never overlaps a live copy. Checked apart from the
 * heartbeat, whose own call may hang on an unresponsive Redis.
 *
 * The same check tells whose the silence was (redisWasSilent): if this timer itself kept running on time since
 * the last beat that succeeded, and that beat is a second old or more, the worker was alive and asking, and
 * Redis (or the way to it) did not answer — an outage every worker sees.
 * Its runs are then given back without counting against the task: three short Redis outages in a long task's
 * life ended it lostconnection, "its heartbeats were late" (adversary 16 Q2). A worker starved of CPU, or one
 * whose lease is too short for its Redis (`-hb 5ms`: each fencing a few ms after a beat), is counted as before.
 */
export function startSelfFencing(
  heartbeat: Heartbeat,
  runs: ReadonlyMap<number, TaskRun>,
  log: Logger,
  heartbeatIntervalMs: number,
): NodeJS.Timeout {
  let lastTick = monotonicMs();
  let lastLease = heartbeat.leaseUntil;
  /** The longest time between two checks since the last beat that succeeded. */
  let longestGap = 0;
  return setInterval(
    () => {
      const now = monotonicMs();
      if (heartbeat.leaseUntil !== lastLease) {
        lastLease = heartbeat.leaseUntil;
        longestGap = 0;
      }
      longestGap = Math.max(longestGap, now - lastTick);
      lastTick = now;
      if (runs.size === 0 || !heartbeat.mustFence(now)) return;
      const live = [...runs.values()].filter(r => r.stoppedBy === undefined);
      if (live.length === 0) return;
      // Since Redis last answered anything: a Redis that answers, however late, is slow, not silent (a 300 ms
      // round trip under a 500 ms heartbeat fenced every run, each read as an outage and never counted: review).
      const silentMs = Math.round(now - Math.max(heartbeat.lastRenewalSent, heartbeat.lastReplyAt));
      const redisSilent = redisWasSilent(silentMs, longestGap, heartbeat.ttlMs);
      log.error(
        {
          tasks: live.map(r => r.id),
          leaseLeftMs: heartbeat.leaseUntil - now,
          silentMs,
          longestGapMs: longestGap,
        },
        redisSilent
          ? `heartbeat lease about to lapse: Redis has not answered for ${silentMs} ms; stopping the running tasks before a takeover`
          : 'heartbeat lease about to lapse: stopping the running tasks before a takeover',
      );
      for (const r of live) {
        if (redisSilent) r.redisSilentMs = silentMs;
        r.stop('fenced', heartbeat.fencing.graceMs);
      }
    },
    Math.max(20, Math.min(250, heartbeatIntervalMs / 4)),
  );
}

/** A silence shorter than this is a lease too short for its Redis, not an outage (run-fencing). */
export const REDIS_FAULT_MIN_SILENCE_MS = 1000;

/**
 * Whether a lease lost after `silentMs` without a renewal was Redis's silence, not the worker's: the silence is
 * long enough to be an outage, and this worker's own checks kept running — none came later than half the silence
 * after the one before (a worker frozen for most of it, or starved, is not). A quarter was too tight for a loaded
 * node: a check 593 ms late in a 1.2 s BUSY episode charged a lease loss (a full run beside an adversary).
 */
export function redisWasSilent(silentMs: number, longestGapMs: number, leaseMs = Infinity): boolean {
  // Half the lease at most: under the shortest lease (500 ms beats × 3) the fence comes after ~1 s of silence, less
  // the last reply's round trip, so a fixed 1 s called the same outage Redis's or the worker's by a few ms either
  // way (999 ms: a lease loss charged for a BUSY episode, and for a SIGSTOP of Redis, in a gate of s16).
  const least = Math.min(REDIS_FAULT_MIN_SILENCE_MS, leaseMs / 2);
  return silentMs >= least && longestGapMs <= silentMs / 2;
}
