import { randomBytes } from 'node:crypto';

import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { runScript } from '../redis/run-script.js';
import { RECONNECT_MAX_DELAY_MS } from '../redis/connection.js';
import { RELEASE_LOCK } from '../redis/scripts.js';
import { provisionDynamicPools, type ProvisionReport } from './provision.js';
import { buryWorker, emptyCounts, findDeadWorkers } from './dead-workers.js';
import { expireIdlePools } from './expire-pools.js';
import { foldEndedWorkflowStats } from './fold-stats.js';
import { guardIdCounter, type IdCounterSeen } from './id-counter.js';
import { writeManagerAlive } from './liveness.js';
import {
  emptyReconcileCounts,
  findStrandedJobs,
  reconcileBatch,
  removeOrphanJobs,
  type ReconcileCounts,
} from './reconcile.js';
import { SuspensionCheck } from './suspension-check.js';
import { TaskJobs } from './task-jobs.js';

/** A reconciliation pass starts at the first sweep and then every this many sweeps. */
export const RECONCILE_EVERY = 12;

/** What one manager process carries from sweep to sweep. */
export interface SweepState {
  readonly jobs: TaskJobs;
  readonly intervalMs: number;
  sweeps: number;
  /** Index in the active-task index where the running reconciliation pass continues; undefined: no pass. */
  reconcileCursor: number | undefined;
  sweepsSincePass: number;
  /** Counts of the current pass, logged when it completes. */
  passCounts: ReconcileCounts;
  /** Pending tasks with a job, by pool, gathered by the pass for its look for stranded jobs at its end. */
  pendingWithJob: Map<string, number[]>;
  /** The highest id counter this manager has seen (id-counter.ts). */
  readonly idCounter: IdCounterSeen;
  /** Which dead workers' allocations Slurm suspended: its squeue may outlive a sweep (suspension-check.ts). */
  readonly suspensions: SuspensionCheck;
}

export function newSweepState(ctx: JtmContext, intervalMs = ctx.config.sweepIntervalMs): SweepState {
  return {
    jobs: new TaskJobs(ctx),
    intervalMs,
    sweeps: 0,
    reconcileCursor: 0,
    sweepsSincePass: 0,
    passCounts: emptyReconcileCounts(),
    pendingWithJob: new Map(),
    idCounter: { high: 0 },
    suspensions: new SuspensionCheck(),
  };
}

export interface SweepReport {
  /** False when another manager's sweep held the lease (this tick was skipped). */
  swept: boolean;
  dead_workers: string[];
  requeued: number;
  lost: number;
  terminated: number;
  reconciled?: ReconcileCounts;
  pools_expired: string[];
  provision: ProvisionReport;
  duration_ms: number;
}

/**
 * One pass of the manager: declare dead workers and recover their tasks, advance reconciliation by one
 * batch, expire idle pools, provision dynamic pools, refresh the manager-alive key. Its cost follows what
 * changed (one range query finds stale workers), not how many workers or tasks exist. A lease keeps two
 * sweeps from overlapping when one runs longer than the interval.
 */
export async function sweep(ctx: JtmContext, state: SweepState, now = Date.now()): Promise<SweepReport> {
  const started = Date.now();
  const token = randomBytes(8).toString('hex');
  const leaseMs = Math.max(5000, state.intervalMs * 3);
  const report: SweepReport = {
    swept: false,
    dead_workers: [],
    requeued: 0,
    lost: 0,
    terminated: 0,
    pools_expired: [],
    provision: { submitted: 0, failedPools: [] },
    duration_ms: 0,
  };
  if ((await ctx.redis.set(ctx.keys.managerLease, token, 'PX', leaseMs, 'NX')) !== 'OK') {
    ctx.logger.debug('another manager is sweeping: tick skipped');
    return report;
  }
  try {
    report.swept = true;
    state.sweeps++;
    // First: the sooner a counter that went back is raised, the fewer submits get an id twice.
    await guarded(ctx, 'id counter check', undefined, () => guardIdCounter(ctx, state.idCounter));
    await ctx.redis.hincrby(ctx.keys.managerStats, 'sweeps', 1);
    const counts = emptyCounts();
    // After a gap, not even sorted: the suspension check forgets the dead workers a sort does not name.
    const lately = await sweptLately(ctx, now, state.intervalMs);
    const dead = lately ? await findDeadWorkers(ctx, now) : [];
    // A worker whose allocation Slurm may have suspended waits for squeue's answer (none buried on an error).
    const { bury } = lately
      ? await guarded(
          ctx,
          'suspended allocations',
          { bury: new Map<string, string | undefined>(), later: [] },
          () => state.suspensions.sort(ctx, dead, now),
        )
      : { bury: new Map<string, string | undefined>() };
    for (const [id, suspendedJob] of bury) {
      try {
        await buryWorker(ctx, state.jobs, id, counts, now, suspendedJob);
        report.dead_workers.push(id);
      } catch (err) {
        ctx.logger.error({ worker: id, err: toError(err) }, 'could not recover the tasks of a dead worker');
      }
    }
    Object.assign(report, counts);
    await reconcileStep(ctx, state, report, now);
    report.pools_expired = await guarded(ctx, 'pool expiry', [], () => expireIdlePools(ctx, state.jobs, now));
    // Ended workflows' counts, once pools expired and at each reconciliation's start.
    if (report.pools_expired.length > 0 || state.sweeps % RECONCILE_EVERY === 1) {
      const folded = await guarded(ctx, 'stats folding', [], () => foldEndedWorkflowStats(ctx));
      if (folded.length > 0)
        ctx.logger.debug({ pools: folded }, 'ended workflows counted under their pool_*');
    }
    // Within the lease: a Slurm command that hangs (sbatch's 60 s limit, a client retrying to read its
    // configuration) held the sweep for 90 s, and with it dead-worker recovery, reconciliation and pool expiry for
    // the whole site (adversary 39 F1). The pass goes on under its own lock; the next sweep's finds it taken.
    const budgetMs = Math.max(1000, leaseMs - (Date.now() - started) - 1000);
    report.provision = await guarded(ctx, 'provisioning', report.provision, () =>
      provisionWithin(ctx, provisionDynamicPools(ctx, now), budgetMs, report.provision),
    );
    await writeManagerAlive(ctx, now, state.intervalMs);
    await ctx.redis.hset(ctx.keys.managerStats, 'last_sweep', now);
  } finally {
    await runScript(ctx.redis, RELEASE_LOCK, [ctx.keys.managerLease], [token]).catch(() => {});
  }
  report.duration_ms = Date.now() - started;
  // For the metrics endpoint of any manager or dashboard (jtm_manager_sweep_duration_seconds).
  if (report.swept)
    await ctx.redis.hset(
      ctx.keys.managerStats,
      'last_sweep_ms',
      report.duration_ms,
      // When it ended: a sweep that waited for a slow squeue is no gap before the next one.
      'last_sweep_at',
      now + report.duration_ms,
    );
  logReport(ctx, report);
  return report;
}

/**
 * Whether the site was swept lately (by any manager): its last sweep ended within one interval and one liveness
 * window, and no gap before it holds the search for dead workers. After a longer gap — Redis refused or ignored
 * every command for a while (a BUSY script, MISCONF, a password rotated, a stop), or no manager ran — workers could
 * not beat either, and their alive keys may have lapsed in the outage itself: a sweep run as Redis answered again
 * took a live worker, whose next beat was a fraction of a second away, for dead and charged its task a loss (a
 * BUSY episode with a manager sweeping every second; the gate of s16). Live workers reconnect on their own
 * schedule (up to RECONNECT_MAX_DELAY_MS between attempts), so one sweep's wait was not enough when this manager
 * reconnected first (a rotated password restored): dead workers are looked for again once a beat window and the
 * longest reconnect delay have passed since the gap ended. The hold is kept in Redis, for every manager of the site.
 */
async function sweptLately(ctx: JtmContext, now: number, intervalMs: number): Promise<boolean> {
  const [lastAt, heldUntil] = await ctx.redis.hmget(
    ctx.keys.managerStats,
    'last_sweep_at',
    'dead_workers_held_until',
  );
  const last = Number(lastAt ?? 0);
  const window = ctx.config.heartbeatIntervalMs * ctx.config.missedBeats;
  if (last > 0 && now - last > intervalMs + window) {
    const until = now + window + RECONNECT_MAX_DELAY_MS;
    await ctx.redis.hset(ctx.keys.managerStats, 'dead_workers_held_until', until);
    ctx.logger.info(
      { sinceLastSweepMs: now - last, heldMs: until - now },
      'no sweep for longer than a beat window: dead workers are looked for once every live worker could beat again',
    );
    return false;
  }
  return !(now < Number(heldUntil ?? 0));
}

async function reconcileStep(
  ctx: JtmContext,
  state: SweepState,
  report: SweepReport,
  now: number,
): Promise<void> {
  if (state.reconcileCursor === undefined) {
    if (++state.sweepsSincePass < RECONCILE_EVERY) return;
    state.reconcileCursor = 0;
    state.passCounts = emptyReconcileCounts();
    state.pendingWithJob = new Map();
  }
  try {
    state.reconcileCursor = await reconcileBatch(
      ctx,
      state.jobs,
      state.reconcileCursor,
      state.passCounts,
      now,
      state.pendingWithJob,
    );
    if (state.reconcileCursor !== undefined) return;
    for (const pool of await ctx.redis.smembers(ctx.keys.pools))
      await removeOrphanJobs(ctx, state.jobs, pool, state.passCounts);
    for (const [pool, ids] of state.pendingWithJob)
      await findStrandedJobs(ctx, state.jobs, pool, ids, state.passCounts);
    state.pendingWithJob.clear();
    state.sweepsSincePass = 0;
    report.reconciled = state.passCounts;
  } catch (err) {
    state.reconcileCursor = undefined;
    state.sweepsSincePass = 0;
    ctx.logger.warn({ err: toError(err) }, 'reconciliation pass failed; retried at the next pass');
  }
}

/** The pass's report if it ends within `ms`; else `fallback`, the pass going on (its failure logged). */
async function provisionWithin(
  ctx: JtmContext,
  pass: Promise<ProvisionReport>,
  ms: number,
  fallback: ProvisionReport,
): Promise<ProvisionReport> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>(resolve => (timer = setTimeout(() => resolve(undefined), ms)));
  try {
    const done = await Promise.race([pass, late]);
    if (done !== undefined) return done;
  } finally {
    clearTimeout(timer);
  }
  ctx.logger.info({ waitedMs: ms }, 'Slurm provisioning outlasts the sweep: it goes on after it');
  pass.catch(err => ctx.logger.error({ err: toError(err) }, 'provisioning failed'));
  return fallback;
}

async function guarded<T>(ctx: JtmContext, what: string, fallback: T, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    ctx.logger.error({ err: toError(err) }, `${what} failed`);
    return fallback;
  }
}

function logReport(ctx: JtmContext, r: SweepReport): void {
  const rc = r.reconciled;
  const reconciledChanges = rc ? Object.values(rc).reduce((a, b) => a + b, 0) : 0;
  const changed =
    r.dead_workers.length +
      r.requeued +
      r.lost +
      r.terminated +
      r.pools_expired.length +
      r.provision.submitted +
      reconciledChanges >
      0 || r.provision.failedPools.length > 0;
  const summary = {
    dead_workers: r.dead_workers.length,
    requeued: r.requeued,
    lost: r.lost,
    terminated: r.terminated,
    pools_expired: r.pools_expired,
    slurm_submitted: r.provision.submitted,
    slurm_failed_pools: r.provision.failedPools,
    ...(rc ? { reconciled: rc } : {}),
    ms: r.duration_ms,
  };
  if (changed) ctx.logger.info(summary, 'sweep');
  else ctx.logger.debug(summary, 'sweep: nothing to do');
}
