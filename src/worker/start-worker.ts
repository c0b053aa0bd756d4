import { hostname, networkInterfaces } from 'node:os';

import { DelayedError, Worker, type Job } from 'bullmq';

import { workerEnvironment } from '../config.js';
import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import type { TaskJobData } from '../tasks/job-data.js';
import { TaskStatus } from '../tasks/status.js';
import { Accounting } from './accounting.js';
import { Heartbeat, type WorkerState } from './heartbeat.js';
import { flagMemoryRetry, memoryTooLow, recordOutOfMemory, taskMemoryLimit } from './memory-limit.js';
import { OutputStream } from './output-stream.js';
import { recordOutcome, TaskUnsuccessful, writeRcOf } from './record-outcome.js';
import { startPtyHost } from './run-in-pty.js';
import type { WorkerIdentity } from './resource-sample.js';
import { Sampler } from './sampler.js';
import { TaskRun, type StopCause, type TaskOutcome } from './task-run.js';
import { DEFER_DELAY_MS, END_OF_LIFE_MARGIN_MS, type WorkerOptions } from './worker-options.js';
import { listenForControl, type ControlMessage } from './worker-control.js';

/** Variables a task does not inherit from its worker: they hold Redis and dashboard secrets. */
const SECRET_VARS = ['REDIS_URL', 'JTM_REDIS_URL', 'JTM_DASHBOARD_PASSWORD', 'JTM_DASHBOARD_USER'];

export interface RunningWorker {
  readonly id: string;
  /** Stops taking tasks; running ones get the grace period (or none with `force`), then are re-queued. */
  stop(force?: boolean): Promise<void>;
  /** Stops taking tasks that cannot finish before the end of life; re-queues running ones that cannot. */
  drain(): void;
  /** Resolves when the worker has stopped (by stop(), idle timeout or a pool removal). */
  readonly stopped: Promise<void>;
}

/**
 * Starts a BullMQ worker on the pool's queue. Each job is one task: the worker claims the record
 * (guarded), runs the command in a pty, samples it, and records exactly one final status — or gives
 * the task back to the queue when it is stopped before the task ends.
 */
export async function startWorker(ctx: JtmContext, opts: WorkerOptions): Promise<RunningWorker> {
  const host = hostname();
  const log = ctx.logger.child({ worker: opts.workerId, pool: opts.pool });
  const runs = new Map<number, TaskRun>();
  const env = workerEnvironment();
  for (const v of SECRET_VARS) delete env[v];
  const heartbeat = new Heartbeat(ctx, opts, host);
  const sampler = new Sampler(
    ctx,
    identity(opts, host),
    ctx.config.sampleIntervalMs,
    ctx.config.watchIntervalMs,
  );
  const accounting = Accounting.open(`jtm-${process.pid}`, ctx.config.accounting === 'procfs', log);
  let state: WorkerState = 'running';
  let lastBusy = Date.now();
  let resolveStopped!: () => void;
  const stopped = new Promise<void>(r => (resolveStopped = r));

  const processor = async (job: Job<TaskJobData>, token?: string): Promise<unknown> => {
    const data = job.data;
    if (opts.endOfLife !== undefined && !fitsInLife(data, opts.endOfLife)) {
      log.info({ task: data.id }, 'task would outlive this worker: left for a fresher one');
      await job.moveToDelayed(Date.now() + DEFER_DELAY_MS, token);
      throw new DelayedError();
    }
    const lowMemory = memoryTooLow(ctx.config.memAvailableMarginBytes);
    if (lowMemory) {
      log.warn({ task: data.id }, `${lowMemory}: task left for later or another worker`);
      await job.moveToDelayed(Date.now() + DEFER_DELAY_MS, token);
      // Redis hands a ready job to the worker that has waited longest, which would be this one again and
      // again: holding the slot until the job is ready lets another worker take it.
      await becomesTrue(() => state !== 'running', DEFER_DELAY_MS + 1000);
      throw new DelayedError();
    }
    const claim = await ctx.tasks.start(data.id, opts.workerId, host);
    if (claim.kind === 'busy') {
      await job.moveToDelayed(Date.now() + DEFER_DELAY_MS, token);
      throw new DelayedError();
    }
    if (claim.kind === 'skip' && claim.status === TaskStatus.lostconnection) await writeRcOf(ctx, data.id);
    if (claim.kind !== 'started') return { skipped: claim.kind === 'skip' ? claim.status : 'missing' };
    lastBusy = Date.now();
    const output = new OutputStream(ctx, data.id);
    const acct = accounting.forTask(data.id, taskMemoryLimit(data, opts));
    void ctx.tasks.setFields(data.id, acct.recordFields()).catch(() => {});
    const run = new TaskRun(data, {
      logDir: ctx.config.logDir,
      env: { ...env, ...acct.env },
      memory: acct,
      killGraceMs: ctx.config.killGraceMs,
      logger: log,
      onOutput: chunk => output.write(chunk),
      onStarted: pid => void ctx.tasks.setFields(data.id, { pid }).catch(() => {}),
    });
    runs.set(data.id, run);
    if (state !== 'running' && wouldBeCut(run, opts.endOfLife)) run.stop('shutdown');
    log.info({ task: data.id, attempt: claim.attempt }, 'task started');
    let outcome: TaskOutcome;
    try {
      const running = run.run();
      const rcFile = data.rc_file;
      sampler.add(run, job, acct, rcFile ? () => void flagMemoryRetry(rcFile) : undefined);
      outcome = await running;
    } finally {
      sampler.remove(data.id);
      acct.close();
      run.sampleState = acct.apply(run.sampleState);
      runs.delete(data.id);
      lastBusy = Date.now();
      await output.flush();
    }
    // When Slurm ends an allocation (scancel, walltime, preemption) it sends SIGTERM to every process of the
    // job at once: the task may die of it before this worker has handled its own SIGTERM. Such a task is
    // given back to the queue, not failed. So is one whose pty host died as the worker was being stopped.
    if (outcome.kind === 'final' && dueToStop(outcome, opts.slurmJobId > 0)) {
      if (await becomesTrue(() => state === 'stopping', STOP_SIGNAL_WINDOW_MS)) {
        const reason =
          opts.slurmJobId > 0 ? 'Slurm ended the allocation' : 'worker shut down before the task ended';
        outcome = { kind: 'requeue', reason, leftovers: outcome.leftovers };
      }
    }
    if (outcome.kind === 'final' && outcome.status === TaskStatus.outofresource) {
      await recordOutOfMemory(ctx, log, data, outcome.reason);
    }
    return recordOutcome(ctx, log, job, token, run, outcome);
  };

  const worker = new Worker<TaskJobData>(ctx.keys.poolQueue(opts.pool), processor, {
    connection: ctx.redis,
    prefix: ctx.keys.queuePrefix,
    concurrency: opts.slots,
    // Our records decide what a lost task becomes; BullMQ only puts stalled jobs back in the queue.
    maxStalledCount: 1000,
    stalledInterval: ctx.config.stalledIntervalMs,
    lockDuration: ctx.config.lockDurationMs,
    skipVersionCheck: true,
    autorun: false,
  } as ConstructorParameters<typeof Worker>[2]);
  worker.on('error', err => log.error({ err }, 'worker error'));
  worker.on('failed', (job, err) => {
    if (!(err instanceof TaskUnsuccessful)) log.error({ task: job?.data.id, err }, 'task processing failed');
  });

  const onControl = (msg: ControlMessage): void => {
    if (msg.type === 'kill') {
      const run = runs.get(msg.task);
      if (run) {
        log.info({ task: msg.task }, 'kill requested');
        run.stop('kill');
      }
    } else if (msg.type === 'stop') {
      void stop(msg.force ?? false);
    }
  };
  const control = await listenForControl(ctx, opts, onControl);

  const stopAll = (cause: StopCause, filter: (r: TaskRun) => boolean = () => true): void => {
    for (const r of runs.values()) if (filter(r)) r.stop(cause);
  };

  /** Kill requests missed on pub/sub, and tasks that another worker has taken over (fencing). */
  const reconcileRuns = async (): Promise<void> => {
    if (runs.size === 0) return;
    const ids = [...runs.keys()];
    const pipeline = ctx.redis.pipeline();
    for (const id of ids) pipeline.hmget(ctx.keys.task(id), 'status', 'worker_id', 'kill_requested');
    const res = (await pipeline.exec()) ?? [];
    res.forEach(([err, v], i) => {
      const run = runs.get(ids[i] as number);
      if (err || !run || !Array.isArray(v)) return;
      const [status, owner, kill] = v as (string | null)[];
      if (kill === '1') run.stop('kill');
      else if (status !== String(TaskStatus.running) || owner !== opts.workerId) run.stop('superseded');
    });
  };

  let beating = false;
  const beat = async (): Promise<void> => {
    if (beating) return;
    beating = true;
    try {
      await heartbeat.beat([...runs.keys()], state);
      await reconcileRuns();
    } catch (err) {
      log.warn({ err: toError(err).message }, 'heartbeat failed');
    } finally {
      beating = false;
    }
  };
  const beatTimer = setInterval(() => void beat(), ctx.config.heartbeatIntervalMs);
  // Idle timeout and end of life are checked apart from the heartbeat: they must act even while Redis is
  // unreachable (an idle worker whose Redis is gone should give its allocation back, not hold it to walltime).
  const lifeTimer = setInterval(() => {
    if (
      opts.idleTimeoutMs !== undefined &&
      !stopping &&
      runs.size === 0 &&
      Date.now() - lastBusy > opts.idleTimeoutMs
    ) {
      log.info({ idleMs: Date.now() - lastBusy }, 'idle timeout: stopping');
      void stop(false);
    }
    if (
      opts.endOfLife !== undefined &&
      state === 'running' &&
      Date.now() > opts.endOfLife - END_OF_LIFE_MARGIN_MS
    ) {
      drain();
    }
  }, 1000);
  lifeTimer.unref();

  let stopping: Promise<void> | undefined;
  const stop = (force = false): Promise<void> => {
    if (force) stopAll('shutdown');
    stopping ??= (async () => {
      state = 'stopping';
      log.info({ running: runs.size }, 'worker stopping');
      const closed = worker.close();
      const grace = setTimeout(() => stopAll('shutdown'), force ? 0 : opts.shutdownGraceMs);
      // Once no task runs, closing only needs Redis to say goodbye; without Redis, give up on that.
      while (
        (await bounded(
          closed.then(() => true),
          5000,
        )) === undefined
      ) {
        if (runs.size === 0) {
          await bounded(worker.close(true), 3000);
          break;
        }
      }
      clearTimeout(grace);
      clearInterval(beatTimer);
      clearInterval(lifeTimer);
      sampler.stop();
      accounting.dispose();
      // Bounded: with Redis unreachable these would wait for it forever, and an exiting worker need not.
      await bounded(control.close(), 3000);
      await bounded(heartbeat.remove(), 3000).catch(err => log.warn({ err }, 'could not remove heartbeat'));
      log.info('worker stopped');
      resolveStopped();
    })();
    return stopping;
  };

  const drain = (): void => {
    if (state !== 'running') return;
    state = 'draining';
    log.info('draining: tasks that cannot finish in the remaining life are re-queued');
    stopAll('shutdown', r => wouldBeCut(r, opts.endOfLife));
    void heartbeat.beat([...runs.keys()], state).catch(() => {});
  };

  await heartbeat.beat([], state);
  startPtyHost(env);
  sampler.start();
  void worker.run().catch(err => log.error({ err }, 'worker run loop failed'));
  log.info(
    {
      slots: opts.slots,
      endOfLife: opts.endOfLife,
      accounting: accounting.mode,
      ...(accounting.reason ? { accountingWhy: accounting.reason } : {}),
      taskMemLimitMb:
        opts.taskMemLimitBytes === undefined ? undefined : Math.round(opts.taskMemLimitBytes / 1048576),
    },
    'worker started',
  );
  return { id: opts.workerId, stop, drain, stopped };
}

/** Exit code of a shell whose command died of SIGTERM (128 + 15). */
const SIGTERM_EXIT = 143;
/** How long after a task's death by SIGTERM (or its pty host's) the worker's own stop is waited for. */
// Generous: on a loaded node the worker's own SIGTERM may be handled seconds after the task died of its own,
// and waiting only delays recording a task that really did die of a stray SIGTERM.
const STOP_SIGNAL_WINDOW_MS = 5000;

/** A failure that may be the worker's stop reaching the task first: Slurm's SIGTERM, or a lost pty host. */
function dueToStop(outcome: { exitCode?: number; hostExited?: boolean }, inSlurm: boolean): boolean {
  return outcome.hostExited === true || (inSlurm && outcome.exitCode === SIGTERM_EXIT);
}

async function becomesTrue(condition: () => boolean, withinMs: number): Promise<boolean> {
  for (const deadline = Date.now() + withinMs; !condition();) {
    if (Date.now() >= deadline) return false;
    await new Promise(r => setTimeout(r, 20));
  }
  return true;
}

/** `p`, or nothing once `ms` have passed. */
async function bounded<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([p, new Promise<undefined>(r => (timer = setTimeout(() => r(undefined), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

/** Whether the task's time limit ends before the worker's end of life (minus a margin). */
function fitsInLife(data: TaskJobData, endOfLife: number | undefined): boolean {
  if (endOfLife === undefined) return true;
  const left = endOfLife - Date.now() - END_OF_LIFE_MARGIN_MS;
  if (data.timeout_ms === undefined) return left > 0;
  return data.timeout_ms <= left;
}

/** A running task the end of life would cut: one without a time limit, or whose limit ends after it. */
function wouldBeCut(run: TaskRun, endOfLife: number | undefined): boolean {
  if (endOfLife === undefined) return false;
  if (run.data.timeout_ms === undefined) return true;
  return run.startedAt + run.data.timeout_ms > endOfLife;
}

function identity(opts: WorkerOptions, host: string): WorkerIdentity {
  return {
    workerId: opts.workerId,
    hostName: host,
    ipAddress: firstIpv4(),
    poolName: opts.pool,
    rootPid: process.pid,
    slurmJobId: opts.slurmJobId,
    workerType: opts.workerType,
    numCores: opts.numCores,
    memPerNode: opts.memPerNode,
    memPerCore: opts.memPerCore,
    jobTime: opts.jobTime,
    workersOnNode: opts.workersOnNode,
    endOfLife: opts.endOfLife,
  };
}

function firstIpv4(): string | null {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return null;
}
