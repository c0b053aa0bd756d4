import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import type { JtmContext } from '../context.js';
import { formatHms } from '../durations.js';
import { SlurmError, toError } from '../errors.js';
import type { Logger } from '../logger.js';
import { listLiveWorkers } from '../pools/live-workers.js';
import { getPool, listPoolNames, type PoolEntry } from '../pools/pool-registry.js';
import { openPoolQueue } from '../tasks/pool-queue.js';
import {
  ActiveJobs,
  clustersOf,
  isLaunchFailureHold,
  listActiveJobs,
  listManagedJobs,
  managedAllocationComment,
  scancel,
  splitJobKey,
  type ManagedJob,
  type SlurmJobState,
} from '../slurm/slurm-commands.js';
import { deploymentScope } from '../redis/location.js';
import {
  markConnected,
  readPoolJobs,
  recordPoolJob,
  syncPoolJobs,
  type PoolSlurmJob,
} from '../slurm/slurm-jobs.js';
import {
  allocationSlots,
  allocationTime,
  batchParams,
  WORKER_START_ALLOWANCE_MS,
  submitAllocation,
  type DynamicWorkerRequest,
} from '../slurm/submit-workers.js';
import { takeRenewedLock } from './renewed-lock.js';
import { clientFailed, clientWorks, leavesProvisioning } from './slurm-client.js';
import { failOversizedCalls, failQueuedTasks, QUEUED } from './fail-queued.js';
import { slurmClustersOfPools } from '../slurm/pool-cluster.js';
import type { BatchScriptParams } from '../slurm/batch-script.js';
import { loadSiteConfig } from '../slurm/site-profiles.js';

/** What one provisioning pass did (the manager's sweep logs it). */
export interface ProvisionReport {
  submitted: number;
  failedPools: string[];
}

/** At most this many sbatch per pool and pass, whatever the queue says (the next pass does the rest). */
const MAX_SUBMITS_PER_POOL = 10;
const MAX_BACKOFF_MS = 10 * 60_000;
/** How long refusals that may heal (isTransientSbatchError) are retried before the pool's queued tasks fail. */
const TRANSIENT_SBATCH_RETRY_MS = 60 * 60_000;
/**
 * The provisioning lock's time to live, renewed while a pass runs (renewed-lock.ts): what a manager that dies
 * mid-pass costs the others.
 */
const LOCK_TTL_MS = 15_000;
/** A pass longer than this (sbatch and squeue hung past their own time limits) gives the lock up. */
const LOCK_MAX_HOLD_MS = 10 * 60_000;

let lastSbatchAt = 0;

/**
 * Called by the manager's sweep each tick: keeps, for each dynamic pool, min(node, what its queued and
 * running tasks need) Slurm allocations, counting the pending ones so that it never over-submits. One
 * manager at a time does it (a lock), and squeue failures never drop a job from the registry.
 */
export async function provisionDynamicPools(ctx: JtmContext, now: number): Promise<ProvisionReport> {
  const report: ProvisionReport = { submitted: 0, failedPools: [] };
  // A manager whose own Slurm client fails does not take the lock from one whose client works (adversary 39 F1).
  if (await leavesProvisioning(ctx, now)) return report;
  const lock = await takeRenewedLock(ctx, ctx.keys.slurmProvisionLock, LOCK_TTL_MS, LOCK_MAX_HOLD_MS);
  if (!lock) return report;
  /** Set when this manager's Slurm client failed and another live manager is to provision instead. */
  const handover = { now: false };
  try {
    const pools: PoolEntry[] = [];
    for (const name of await listPoolNames(ctx)) {
      const p = await getPool(ctx, name);
      if (p?.kind === 'dynamic' && p.spec?.time) pools.push(p);
    }
    if (pools.length === 0) return report;
    // squeue only follows allocations already registered: with none (a new pool's first allocation, what a
    // submit's wake-up usually asks for) there is nothing to follow, and one process start less before sbatch.
    const registered = (
      await Promise.all(pools.map(p => ctx.redis.hkeys(ctx.keys.poolSlurmJobs(p.name))))
    ).flat();
    // A pool whose sbatch failed may have an allocation all the same (a controller that timed out after
    // queueing the job): its allocations are looked for by their comment before it gets another.
    const unsure = await poolsMarkedUnsure(ctx, pools);
    let active: ActiveJobs | undefined = new ActiveJobs();
    let managed: Map<string, ManagedJob> | undefined;
    if (registered.length > 0 || unsure.size > 0) {
      try {
        // Jobs on other clusters of the site (`id;cluster`) are listed by a squeue that names them.
        active = await listActiveJobs(clustersOf(registered));
        if (unsure.size > 0) {
          // The unsure pools' own Slurm clusters too: the allocation looked for is in no registry yet.
          const theirs = slurmClustersOfPools(
            pools.filter(p => unsure.has(p.name)).map(p => p.spec?.cluster),
            () => loadSiteConfig(ctx.config.siteConfigPath),
          );
          const where = [...new Set([...clustersOf(registered), ...theirs])].sort();
          managed = await listManagedJobs(allocationComment(ctx), where);
        }
        await clientWorks(ctx);
      } catch (err) {
        if (err instanceof SlurmError && err.clientFault && (await clientFailed(ctx, err))) {
          handover.now = true;
          return report;
        }
        // Not knowing is not "dead": keep the registry as it is (it may over-count, never under-count).
        active = undefined;
        managed = undefined;
        ctx.logger.warn({ err: toError(err) }, 'squeue failed: Slurm job registry left unchanged');
      }
    }
    // A few pools at once: one whose sbatch hangs (its controller, on a multi-cluster site, stalled) held up every
    // other pool's allocations for up to sbatch's time limit per pass (adversary 25 F5). sbatch starts stay spaced
    // (spaceSbatch).
    await atMostAtOnce(POOLS_AT_ONCE, pools, async pool => {
      // Lost (renewals failed past its TTL, or held past LOCK_MAX_HOLD_MS): another manager may provision now.
      if (!lock.held() || handover.now) return;
      try {
        const unsureSince = unsure.get(pool.name);
        if (managed && unsureSince !== undefined) await adoptAllocations(ctx, pool, managed, active, now);
        // Not asked again blind while Slurm cannot say what the last sbatch did (squeue failing too: the
        // controller still stalled); for up to the longest back-off, so that a squeue broken for good does not
        // stop the pool's provisioning.
        else if (unsureSince !== undefined && now - unsureSince < MAX_BACKOFF_MS) return;
        await provisionPool(ctx, pool, active, now, report, handover);
      } catch (err) {
        ctx.logger.error({ pool: pool.name, err: toError(err) }, 'provisioning failed');
      }
    });
  } finally {
    await lock.release();
    // The lock given up at once, and the managers told: the one whose client works provisions now, not at its
    // next sweep.
    if (handover.now) await ctx.redis.publish(ctx.keys.provisionRequests, 'handover').catch(() => 0);
  }
  return report;
}

async function provisionPool(
  ctx: JtmContext,
  pool: PoolEntry,
  active: ActiveJobs | undefined,
  now: number,
  report: ProvisionReport,
  handover: { now: boolean },
): Promise<void> {
  const log = ctx.logger.child({ pool: pool.name });
  const stateKey = ctx.keys.poolSlurmState(pool.name);
  const jobs = await readPoolJobs(ctx, pool.name);
  const live = new Set((await listLiveWorkers(ctx, pool.name)).map(w => String(w.slurm_job_id)));
  if ((await markConnected(ctx, pool.name, jobs, live)) > 0)
    await ctx.redis.hdel(stateKey, 'unstarted', 'cancelled');
  /** Allocations first seen held in this pass (their warning waits for the work count: none, they are cancelled). */
  let newlyHeld: [string, string | undefined][] = [];
  if (active) {
    const wasHeld = new Set([...jobs].filter(([, j]) => j.state === 'held').map(([id]) => id));
    const unlisted: string[] = [];
    const gone = await syncPoolJobs(ctx, pool.name, jobs, active, { now, liveJobIds: live, unlisted });
    if (unlisted.length > 0)
      log.warn(
        { jobs: unlisted },
        "squeue did not list allocations booked a moment ago or whose workers are alive: kept (Slurm's answer is short)",
      );
    if (gone.size > 0) log.info({ jobs: [...gone.keys()] }, 'Slurm allocations ended');
    newlyHeld = await settleHeld(ctx, pool.name, jobs, active, wasHeld, gone, log);
    await cancelWorkerless(ctx, pool.name, jobs, live, now, log);
    await cancelRequeued(ctx, pool.name, jobs, log);
    if (await judgeEndedAllocations(ctx, pool.name, gone, now, report, log)) return;
  }
  const work = await countWork(ctx, pool.name);
  if (work > 0)
    for (const [job, reason] of newlyHeld)
      log.warn(
        { job, reason },
        `Slurm holds allocation ${job} (${reason ?? 'held'}): the pool's tasks wait for it; scontrol release it, or scancel it and the manager books another`,
      );
  if (work === 0) {
    if (active) await cancelUnneeded(ctx, pool.name, jobs, active, log);
    return;
  }
  const spec = pool.spec!;
  const request = allocationRequest(ctx, pool);
  const state = await ctx.redis.hgetall(stateKey);
  if (Number(state['retry_at'] ?? 0) > now) return;
  // A streak of failures ends when the pool goes quiet: a pool whose retry came due long ago (no work since,
  // or expired and used again) starts afresh, or a new workflow's first refusal failed its tasks at once.
  const stale = Number(state['retry_at'] ?? 0) < now - MAX_BACKOFF_MS;
  if (stale) delete state['failing_since'];
  let failuresSoFar = stale ? 0 : Number(state['failures'] ?? 0);
  let toSubmit = 0;
  let slotsPerJob = 1;
  try {
    const params = buildParams(request, ctx);
    slotsPerJob = allocationSlots(params);
    const want = Math.min(spec.node ?? 1, Math.ceil(work / slotsPerJob));
    // A suspended allocation brings nothing until Slurm resumes it (maybe hours: preemption): its workers' tasks
    // were given back (dead-workers.ts), and they need an allocation that runs (adversary 18 S2).
    // Bounded at twice what the work needs, suspended ones included: a site that suspends what it starts (gang
    // scheduling's time slices) would otherwise get one more allocation per sweep for as long as it does.
    const counted = [...jobs.values()].filter(j => j.state !== 'suspended').length;
    toSubmit = Math.min(MAX_SUBMITS_PER_POOL, want - counted, 2 * want - jobs.size);
    for (let i = 0; i < toSubmit; i++) {
      await spaceSbatch(ctx.config.sbatchIntervalMs);
      // Marked unsure before the sbatch, cleared once its job is registered: a manager killed in between (its
      // sbatch may have queued the job) leaves the pool unsure, and the next pass, this manager's after a restart
      // or another's, looks for the job by its comment before booking another (adversary 18 S4: a restarted
      // manager booked a second allocation, and the first, in no registry, ran the task out of sight).
      await ctx.redis.hset(stateKey, 'unsure', Date.now());
      // Each allocation gets its own script id (and thus worker ids).
      const submitted = await submitAllocation(buildParams(request, ctx), log);
      await clientWorks(ctx);
      await recordPoolJob(ctx, pool.name, submitted.jobId, {
        state: 'pending',
        slots: submitted.slots,
        submitted_at: Date.now(),
        script: submitted.script,
      });
      await ctx.redis.hdel(stateKey, 'unsure');
      // Removed while its sbatch ran (remove-pool found nothing to cancel yet): this allocation would wait in
      // Slurm's queue out of sight of `jtm pools`, then run idle (adversary 18 S3). The pool is looked at after the
      // job is registered, so a removal either lists the job and cancels it, or is seen here.
      if ((await ctx.redis.sismember(ctx.keys.pools, pool.name)) === 0) {
        const job = submitted.jobId;
        try {
          await scancel([job]);
          log.warn({ job }, 'pool removed while its allocation was being booked: allocation cancelled');
        } catch (err) {
          // Not an sbatch failure of the pool (the catch below): say what to do, and leave no state behind.
          log.error(
            { job, err: toError(err) },
            'pool removed while its allocation was being booked: scancel it',
          );
        }
        await ctx.redis.del(ctx.keys.poolSlurmJobs(pool.name), stateKey);
        return;
      }
      report.submitted++;
      if (failuresSoFar > 0 || state['last_error'] !== undefined) {
        await ctx.redis.hdel(stateKey, 'failures', 'retry_at', 'last_error', 'failing_since');
        delete state['last_error'];
      }
      failuresSoFar = 0;
    }
  } catch (err) {
    if (err instanceof CannotBuildAllocation) {
      await cannotBuild(ctx, pool.name, stateKey, err, log, now);
      return;
    }
    if (err instanceof SlurmError && err.clientFault) {
      // This host's client, not Slurm: not the pool's failure while another manager can book it (its pass looks
      // for the job by its comment first: the pool stays unsure).
      if (await clientFailed(ctx, err)) {
        handover.now = true;
        return;
      }
    } else if (err instanceof SlurmError && err.refused) await clientWorks(ctx);
    await recordSbatchFailure(ctx, pool.name, err, {
      state,
      failuresSoFar,
      request,
      poolTime: spec.time!,
      now,
      report,
      log,
    });
  }
}

/** Where a pool's allocations stand as its pass read them, for recordSbatchFailure. */
interface SbatchFailureContext {
  /** The pool's Slurm state hash as read at the pass's start. */
  state: Record<string, string>;
  /** The pool's failures in a row before this one. */
  failuresSoFar: number;
  request: DynamicWorkerRequest;
  /** The pool's own time (its spec's), which the allocation's adds to. */
  poolTime: string;
  now: number;
  report: ProvisionReport;
  log: Logger;
}

/**
 * An sbatch of the pool failed: backed off and tried again, or, after JTM_SBATCH_MAX_FAILURES in a row (a refusal
 * that may heal waited for up to an hour), the calls that ask the most failed, or the pool's queued tasks.
 */
async function recordSbatchFailure(
  ctx: JtmContext,
  pool: string,
  err: unknown,
  { state, failuresSoFar, request, poolTime, now, report, log }: SbatchFailureContext,
): Promise<void> {
  const stateKey = ctx.keys.poolSlurmState(pool);
  const message = withTimeAsked(toError(err).message, request, poolTime, ctx);
  const failures = failuresSoFar + 1;
  // The unsure mark set before the sbatch stays unless Slurm refused for good (a bad account or partition):
  // then nothing was queued, and the pool keeps its back-off schedule. After anything else — a refusal that may
  // heal but may also come from a controller that queued the job and timed out answering, our own time limit on
  // sbatch, a reply we could not read, a Redis error after the sbatch — the next pass looks for the job by its
  // comment before asking again (adoptAllocations).
  if (err instanceof SlurmError && err.refused && !err.transient)
    await ctx.redis.hdel(stateKey, 'unsure').catch(() => 0);
  // A refusal that may heal (a partition drained for maintenance, the controller restarting) is retried for
  // up to an hour: three in 30 s failed every call of every workflow that started meanwhile (adversary 7, H5).
  const since = Number(state['failing_since'] ?? now);
  const waitForSlurm = err instanceof SlurmError && err.transient && now - since < TRANSIENT_SBATCH_RETRY_MS;
  // Only the calls that ask the most fail when the calls differ, and the pool's spec shrinks to the others'
  // (failOversizedCalls): one impossible call failed a shared pool's every call (adversary 25 F2).
  const outcome =
    failures >= ctx.config.sbatchMaxFailures && !waitForSlurm
      ? await failOversizedCalls(ctx, pool, message)
      : undefined;
  if (failures >= ctx.config.sbatchMaxFailures && !waitForSlurm && outcome === undefined) {
    await servedWithout(ctx, log, stateKey, now, message);
  } else if (failures >= ctx.config.sbatchMaxFailures && !waitForSlurm) {
    await ctx.redis.hdel(stateKey, 'failures', 'retry_at', 'last_error', 'failing_since');
    if (outcome!.failed > 0) report.failedPools.push(pool);
    if (outcome!.failed === 0)
      log.warn(
        { failures, kept: outcome!.kept, err: message },
        "Slurm refused an allocation larger than the pool's calls now need: its spec shrunk to theirs",
      );
    else if (outcome!.kept === 0)
      log.error(
        { failures, failed: outcome!.failed, err: message },
        'cannot get a Slurm allocation: queued tasks failed',
      );
    else
      log.error(
        { failures, failed: outcome!.failed, kept: outcome!.kept, err: message },
        "cannot get a Slurm allocation: the calls asking the most failed; the pool's spec is now its other calls'",
      );
  } else {
    const delay = Math.min(MAX_BACKOFF_MS, ctx.config.sbatchBackoffMs * 2 ** (failures - 1));
    await ctx.redis.hset(
      stateKey,
      'failures',
      failures,
      'retry_at',
      now + delay,
      'last_error',
      message,
      'failing_since',
      since,
    );
    log.warn(
      { failures, retryInMs: delay, err: message, ...(waitForSlurm ? { transient: true } : {}) },
      'sbatch failed: will retry',
    );
  }
}

/**
 * The pool's allocations that ended without a worker ever connecting (`gone`, just synced from squeue): replaced by
 * the pass that follows, unless they keep ending so; then the pool's queued tasks are failed with the reason.
 * Returns true when that ended the pool's pass.
 */
async function judgeEndedAllocations(
  ctx: JtmContext,
  pool: string,
  gone: ReadonlyMap<string, PoolSlurmJob>,
  now: number,
  report: ProvisionReport,
  log: Logger,
): Promise<boolean> {
  const stateKey = ctx.keys.poolSlurmState(pool);
  // Allocations that left Slurm's queue before they ever ran (scancel of a queued job, a QOS or deadline
  // cancel): replaced, and not blamed on the workers (three such cancels failed the pool's tasks with
  // "ended without any worker connecting", pointing at a log that did not exist). Bounded too, so that
  // a site that cancels every allocation does not get new ones for ever.
  const cancelled = [...gone].filter(([, j]) => !j.connected && neverRan(j));
  if (cancelled.length > 0) {
    const n = await ctx.redis.hincrby(stateKey, 'cancelled', cancelled.length);
    const message = `Slurm job ${cancelled[cancelled.length - 1]![0]} left Slurm's queue before it started (cancelled?)`;
    log.warn({ jobs: cancelled.map(([i]) => i), cancelled: n }, `${message}: replaced`);
    if (n >= ctx.config.sbatchMaxFailures * CANCELLED_BEFORE_START_FACTOR) {
      const why = 'allocations keep being cancelled before they start';
      await giveUpOnPool(ctx, pool, { reason: `${message}, ${n} times`, message, why, now, report, log });
      return true;
    }
  }
  // Allocations that ran but never had a worker (bad JTM_COMMAND, Redis unreachable from the nodes):
  // replacing them forever would hide the problem, so they count as failures like a failed sbatch.
  const dud = [...gone].filter(([, j]) => !j.connected && !neverRan(j));
  if (dud.length > 0) {
    const unstarted = await ctx.redis.hincrby(stateKey, 'unstarted', dud.length);
    const [id, job] = dud[dud.length - 1]!;
    const where = job.script ? ` (see ${job.script.replace(/\.job$/, '.err')})` : '';
    const message = `Slurm job ${id} ended without any worker connecting${where}`;
    log.warn({ jobs: dud.map(([i]) => i), unstarted }, message);
    if (unstarted >= ctx.config.sbatchMaxFailures) {
      const why = 'workers never start in this pool';
      await giveUpOnPool(ctx, pool, { reason: message, message, why, now, report, log });
      return true;
    }
  }
  return false;
}

/**
 * The pool's allocations keep ending unused: its queued tasks are failed with `reason` and its Slurm state starts
 * afresh; or, while live workers serve the pool (failQueuedTasks then fails none), they wait for those workers and
 * Slurm is asked again only after the longest back-off (servedWithout), `message` said.
 */
async function giveUpOnPool(
  ctx: JtmContext,
  pool: string,
  p: { reason: string; message: string; why: string; now: number; report: ProvisionReport; log: Logger },
): Promise<void> {
  const stateKey = ctx.keys.poolSlurmState(pool);
  const failed = await failQueuedTasks(ctx, pool, p.reason);
  if (failed === undefined) {
    await servedWithout(ctx, p.log, stateKey, p.now, p.message);
    return;
  }
  await ctx.redis.del(stateKey);
  p.report.failedPools.push(pool);
  p.log.error({ failed }, `${p.why}: queued tasks failed`);
}

/**
 * This manager cannot write the pool's batch script: its site configuration (JTM_SITE_CONFIG) is unreadable,
 * or lacks the pool's cluster (the submit's knew it). The manager's fault, not Slurm's and not the tasks': it
 * was counted as sbatch failures and failed every dynamic pool's queued tasks (rc 126) while check-manager called
 * the manager healthy (adversary 25 F1). Not counted: the tasks wait (another manager of the site, or this one
 * once its configuration is mended, books the pool; nothing is held back for them), the pool shows the reason
 * (`jtm pools`), and the manager logs it as an error once a minute per pool and reason.
 */
class CannotBuildAllocation extends Error {
  constructor(override readonly cause: Error) {
    super(`this manager cannot book the pool's allocations: ${cause.message}`);
  }
}

function buildParams(request: DynamicWorkerRequest, ctx: JtmContext): BatchScriptParams {
  try {
    return batchParams(request, ctx.config);
  } catch (err) {
    throw new CannotBuildAllocation(toError(err));
  }
}

const cannotBuildSaid = new Map<string, number>();

async function cannotBuild(
  ctx: JtmContext,
  pool: string,
  stateKey: string,
  err: CannotBuildAllocation,
  log: Logger,
  now: number,
): Promise<void> {
  await ctx.redis.hset(stateKey, 'last_error', err.message);
  const key = `${pool}\n${err.message}`;
  if (now - (cannotBuildSaid.get(key) ?? 0) < 60_000) return;
  cannotBuildSaid.set(key, now);
  if (cannotBuildSaid.size > 10_000) cannotBuildSaid.clear();
  log.error(
    { err: err.cause.message },
    `${err.message}: the pool's tasks wait (not counted as sbatch failures)`,
  );
}

/**
 * The pool's allocations Slurm holds (squeue lists them pending with a hold reason; adversary 18 S1: one held
 * was counted as coming capacity for as long as the hold lasted, with nothing said anywhere). One that Slurm held
 * itself after its batch script failed to launch ("launch failed requeued held") waits for a release nobody
 * gives: it is cancelled and joins `gone`, where it counts as an allocation whose workers never started (and is
 * replaced). One a person held (`scontrol hold`, `requeuehold`) is theirs to release or cancel: it still counts,
 * so that no second allocation is booked behind an admin's back, and the manager says so once, when the hold
 * is first seen, if the pool has work (`jtm pools` shows it `held`; `scancel` it and the manager books another).
 * Returns those first seen held in this pass, with their reasons, for that warning.
 */
async function settleHeld(
  ctx: JtmContext,
  pool: string,
  jobs: Map<string, PoolSlurmJob>,
  active: ActiveJobs,
  wasHeld: ReadonlySet<string>,
  gone: Map<string, PoolSlurmJob>,
  log: Logger,
): Promise<[string, string | undefined][]> {
  const relaunch: string[] = [];
  const held: [string, string | undefined][] = [];
  for (const [id, job] of jobs) {
    if (job.state !== 'held') continue;
    const reason = active.holdReasons.get(id);
    if (isLaunchFailureHold(reason)) relaunch.push(id);
    else if (!wasHeld.has(id)) held.push([id, reason]);
  }
  const cancelled = await cancelAndForget(
    ctx,
    pool,
    jobs,
    relaunch,
    log,
    'allocations Slurm failed to launch',
    'Slurm could not launch these allocations and held them: cancelled and replaced',
  );
  // Counted as allocations whose workers never started (neverRan: false).
  for (const [id, job] of cancelled) gone.set(id, { ...job, launch_failed: true });
  return held;
}

/**
 * An allocation Slurm still lists running, whose workers connected once and have all been gone for
 * WORKERLESS_GRACE_MS, is cancelled and forgotten: its batch step died (slurmstepd killed, a node's daemon
 * restarted) and Slurm kept the job until its time limit, counted as the pool's capacity while no worker
 * served it — the pool's next call waited the whole allocation time, hours on a real site (adversary 39 F2).
 * Not counted as a failure: its workers did start. The clock starts when a pass first finds it without a
 * worker (workerless_since), and a worker seen again (markConnected) stops it.
 */
async function cancelWorkerless(
  ctx: JtmContext,
  pool: string,
  jobs: Map<string, PoolSlurmJob>,
  live: ReadonlySet<string>,
  now: number,
  log: Logger,
): Promise<void> {
  const ghosts: string[] = [];
  for (const [id, job] of jobs) {
    if (job.state !== 'running' || !job.connected || live.has(splitJobKey(id).id)) continue;
    if (job.workerless_since === undefined) {
      job.workerless_since = now;
      await ctx.redis.hset(ctx.keys.poolSlurmJobs(pool), id, JSON.stringify(job));
    } else if (now - job.workerless_since >= WORKERLESS_GRACE_MS) ghosts.push(id);
  }
  await cancelAndForget(
    ctx,
    pool,
    jobs,
    ghosts,
    log,
    'allocations without a worker',
    'Slurm still runs these allocations, but none of their workers has been alive for a while (their batch step died?): cancelled, and the pool gets another',
  );
}

/**
 * Cancels `ids` (scancel) and drops them from the pool's registry and from `jobs`, saying so with `done`; an
 * scancel that fails leaves them as they are, said with `what`. Returns the entries dropped.
 */
async function cancelAndForget(
  ctx: JtmContext,
  pool: string,
  jobs: Map<string, PoolSlurmJob>,
  ids: string[],
  log: Logger,
  what: string,
  done: string,
): Promise<Map<string, PoolSlurmJob>> {
  const dropped = new Map<string, PoolSlurmJob>();
  if (ids.length === 0) return dropped;
  try {
    await scancel(ids);
  } catch (err) {
    log.warn({ jobs: ids, err: toError(err) }, `could not cancel ${what}`);
    return dropped;
  }
  await ctx.redis.hdel(ctx.keys.poolSlurmJobs(pool), ...ids);
  for (const id of ids) {
    const job = jobs.get(id);
    if (job) dropped.set(id, job);
    jobs.delete(id);
  }
  log.warn({ jobs: ids }, done);
  return dropped;
}

/**
 * An allocation whose workers connected and that Slurm lists pending again was requeued (`scontrol requeue`, a
 * node failure with requeue on): Slurm holds it back for its begin time (about 2 min), and it counted as the
 * pool's coming capacity meanwhile, so nothing else was booked and the task it gave back waited (adversary 39
 * F3: 2 min 7 s). It is cancelled and the pool gets another allocation, which starts as soon as Slurm can place
 * it; not counted as a failure (its workers did start).
 */
async function cancelRequeued(
  ctx: JtmContext,
  pool: string,
  jobs: Map<string, PoolSlurmJob>,
  log: Logger,
): Promise<void> {
  const requeued = [...jobs].filter(([, j]) => j.state === 'pending' && j.connected).map(([id]) => id);
  await cancelAndForget(
    ctx,
    pool,
    jobs,
    requeued,
    log,
    'requeued allocations',
    'Slurm requeued these allocations (they would wait for their begin time): cancelled, and the pool gets another',
  );
}

/** How long a running allocation whose workers connected may have none alive before it is cancelled. */
export const WORKERLESS_GRACE_MS = 5 * 60_000;

/**
 * Slurm's refusal of the allocation's time ("Requested time limit is invalid (missing or exceeds some limit)")
 * with the time asked and where it comes from: the call's own time fitted the partition, the allocation's did
 * not, and no line anywhere said that JTM had added to it (adversary 18 S5).
 */
function withTimeAsked(
  message: string,
  request: DynamicWorkerRequest,
  poolTime: string,
  ctx: JtmContext,
): string {
  if (!/Requested time limit/i.test(message)) return message;
  return (
    `${message} (asked --time=${request.job_time}: the pool's time ${poolTime} + JTM_SLURM_TIME_SLACK ` +
    `${formatHms(ctx.config.slurmTimeSlackMs)} + ${WORKER_START_ALLOWANCE_MS / 60_000} min for the workers' start; ` +
    `lower JTM_SLURM_TIME_SLACK or the call's time to fit the partition's limit)`
  );
}

/** The comment of this deployment's managed allocations (its scope: Redis URL and prefix). */
function allocationComment(ctx: JtmContext): string {
  return managedAllocationComment(deploymentScope(ctx.config));
}

/** The pools among `pools` whose last sbatch failed, with when (their state's `unsure`). */
async function poolsMarkedUnsure(ctx: JtmContext, pools: readonly PoolEntry[]): Promise<Map<string, number>> {
  const read = ctx.redis.pipeline();
  for (const p of pools) read.hget(ctx.keys.poolSlurmState(p.name), 'unsure');
  const replies = (await read.exec()) ?? [];
  const out = new Map<string, number>();
  pools.forEach((p, i) => {
    const at = Number(replies[i]?.[1] ?? NaN);
    if (Number.isFinite(at)) out.set(p.name, at);
  });
  return out;
}

/**
 * Registers the pool's allocations that Slurm lists with this deployment's comment but the registry lacks:
 * an sbatch that failed on a timeout after the controller had queued the job (a controller stalled 50 s
 * gave one task three allocations, two of them neither counted nor cancelled: adversary 11 L9). Then the pool
 * is no longer unsure.
 */
async function adoptAllocations(
  ctx: JtmContext,
  pool: PoolEntry,
  managed: ReadonlyMap<string, ManagedJob>,
  active: Map<string, SlurmJobState> | undefined,
  now: number,
): Promise<void> {
  const jobs = await readPoolJobs(ctx, pool.name);
  const found = [...managed].filter(([key, j]) => j.pool === pool.name && !jobs.has(key));
  for (const [key, j] of found) {
    await recordPoolJob(ctx, pool.name, key, {
      state: j.state,
      slots: slotsPerAllocation(ctx, pool),
      submitted_at: now,
    });
    active?.set(key, j.state);
  }
  if (found.length > 0) {
    // The pool is marked unsure before each sbatch: an sbatch that reported a failure (a timeout, a reply not read)
    // left its message; a manager killed or stopped during its sbatch left none, and the log said a failure had
    // been reported all the same (adversary 39 F7).
    const reported = await ctx.redis.hget(ctx.keys.poolSlurmState(pool.name), 'last_error');
    ctx.logger.warn(
      { pool: pool.name, jobs: found.map(([key]) => key), ...(reported ? { sbatchSaid: reported } : {}) },
      reported
        ? "Slurm allocations queued by an sbatch that reported a failure: counted as the pool's"
        : "Slurm allocations queued by an sbatch whose manager stopped (killed or restarted) before it could register them: counted as the pool's",
    );
    // The failure was not one: `jtm pools` said "sbatch failing" until the pool expired (adversary 25 F6).
    await ctx.redis.hdel(
      ctx.keys.poolSlurmState(pool.name),
      'failures',
      'retry_at',
      'last_error',
      'failing_since',
    );
  }
  await ctx.redis.hdel(ctx.keys.poolSlurmState(pool.name), 'unsure');
}

/** What the manager asks of Slurm for one allocation of a dynamic pool (its spec, one node). */
function allocationRequest(ctx: JtmContext, pool: PoolEntry): DynamicWorkerRequest {
  const spec = pool.spec!;
  return {
    pool_name: pool.name,
    cluster: spec.cluster,
    job_time: allocationTime(spec.time!, ctx.config),
    cpus_per_task: spec.cpu,
    mem: spec.mem,
    nnodes: 1,
    num_worker_per_node: spec.nwpn,
    constraint: spec.constraint,
    qos: spec.qos,
    charging_account: spec.account,
    partition: spec.partition,
    'idle-timeout': `${ctx.config.slurmIdleTimeoutMs}ms`,
    comment: allocationComment(ctx),
  };
}

/** Worker slots one allocation of the pool brings (as submitAllocation counts them); 1 if its spec is refused. */
function slotsPerAllocation(ctx: JtmContext, pool: PoolEntry): number {
  try {
    return allocationSlots(batchParams(allocationRequest(ctx, pool), ctx.config));
  } catch {
    return 1;
  }
}

/** How many more cancels before start than failed allocations a pool is allowed (JTM_SBATCH_MAX_FAILURES ×). */
const CANCELLED_BEFORE_START_FACTOR = 10;

/**
 * Whether an allocation that left Slurm's queue never ran: last seen pending, and no batch log of it (Slurm
 * creates the `.out` and `.err` next to the script when the job starts; one that started and failed between
 * two sweeps has them).
 */
function neverRan(job: PoolSlurmJob): boolean {
  // A held one too (scancel of it is what the manager's warning suggests): replaced, not blamed on the workers.
  if (job.state !== 'pending' && !(job.state === 'held' && !job.launch_failed)) return false;
  if (!job.script) return true;
  const base = job.script.replace(/\.job$/, '');
  return !existsSync(`${base}.out`) && !existsSync(`${base}.err`);
}

/** Tasks waiting for a worker plus tasks running, from the pool's queue. */
async function countWork(ctx: JtmContext, pool: string): Promise<number> {
  const queue = openPoolQueue(ctx, pool);
  try {
    const counts = await queue.getJobCounts(...QUEUED, 'active');
    return Object.values(counts).reduce((a, b) => a + b, 0);
  } finally {
    await queue.close();
  }
}

/**
 * With no work left in the pool, its allocations still waiting in Slurm's queue are cancelled: once started
 * they would only sit idle until JTM_SLURM_IDLE_TIMEOUT, allocation hours for nothing (a task killed or
 * finished elsewhere meanwhile). Running ones end by themselves when idle; ones whose worker connected are
 * left alone. A failed scancel is logged and tried again at the next tick.
 */
async function cancelUnneeded(
  ctx: JtmContext,
  pool: string,
  jobs: ReadonlyMap<string, { connected?: boolean }>,
  active: ReadonlyMap<string, SlurmJobState>,
  log: Logger,
): Promise<void> {
  const waiting = [...jobs]
    // A held one even if its workers once ran (requeuehold of a running allocation): it starts only when released.
    .filter(([id, j]) => (active.get(id) === 'pending' && !j.connected) || active.get(id) === 'held')
    .map(([id]) => id);
  if (waiting.length === 0) return;
  try {
    await scancel(waiting);
    await ctx.redis.hdel(ctx.keys.poolSlurmJobs(pool), ...waiting);
    log.info({ jobs: waiting }, 'no work left: Slurm allocations still queued cancelled');
  } catch (err) {
    log.warn({ jobs: waiting, err: toError(err) }, 'could not cancel queued Slurm allocations');
  }
}

/**
 * A pool that gets no Slurm allocation while live workers serve it: its queued tasks wait for them, and the
 * manager asks Slurm again only after the longest back-off, saying why once per window (failing them and
 * starting over, it asked again every few sweeps for as long as the pool had a queue).
 */
async function servedWithout(
  ctx: JtmContext,
  log: Logger,
  stateKey: string,
  now: number,
  message: string,
): Promise<void> {
  await ctx.redis.hset(stateKey, 'retry_at', now + MAX_BACKOFF_MS, 'last_error', message);
  log.warn(
    { err: message, retryInMs: MAX_BACKOFF_MS },
    'no Slurm allocation for the pool, but live workers serve it: its queued tasks wait for them',
  );
}

/** The sbatch starts of pools provisioned at once, one after the other (each waits for the one before). */
let sbatchGate: Promise<void> = Promise.resolve();

async function spaceSbatch(intervalMs: number): Promise<void> {
  const turn = sbatchGate.then(async () => {
    const wait = lastSbatchAt + intervalMs - Date.now();
    if (wait > 0) await sleep(wait);
    lastSbatchAt = Date.now();
  });
  sbatchGate = turn.catch(() => undefined);
  await turn;
}

/** Pools provisioned at once in a pass. */
const POOLS_AT_ONCE = 4;

/** `run` over `items`, at most `width` at a time. */
async function atMostAtOnce<T>(
  width: number,
  items: readonly T[],
  run: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) await run(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane));
}
