import { randomBytes } from 'node:crypto';
import { availableParallelism, hostname } from 'node:os';

import type { JtmContext } from '../context.js';
import { MAX_TIMER_MS, parseDuration, parseDurationOr } from '../durations.js';
import type { Config } from '../config.js';
import { InvalidInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import { exitSoonAfterStop, installShutdown } from '../shutdown.js';
import { normaliseMemory, validatePoolName, validateTime } from '../pool-spec.js';
import type { DynamicWorkerRequest } from '../slurm/submit-workers.js';
import { dynamicTaskLimit, sizeBytes } from '../worker/memory-limit.js';
import { startTaskHost } from '../worker/task-environment.js';
import type { RunningWorker } from '../worker/start-worker.js';
import type { WorkerOptions } from '../worker/worker-options.js';

/**
 * `jtm worker` flags, with the original's names: the Slurm request of `-wt dynamic` (the same flags ask
 * for an allocation) plus what a running worker needs.
 */
export interface WorkerFlags extends Omit<DynamicWorkerRequest, 'slots'> {
  worker_type: string;
  slurm_job_id?: number;
  heartbeat_interval?: string;
  log_dir?: string;
  slots: number;
  lifetime?: string;
  'shutdown-grace': string;
  'task-mem-limit'?: string;
  zerofile?: boolean;
}

const WORKER_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** Options of a duration flag: `positive` refuses 0; `maxMs` (default: a timer's maximum, MAX_TIMER_MS). */
export interface DurationFlagOptions {
  positive?: boolean;
  maxMs?: number;
}

export function parseDurationFlag(text: string, flag: string, opts: DurationFlagOptions = {}): number {
  const ms = parseDurationOr(text, flag, '30s, 10m or hh:mm:ss', opts.maxMs ?? MAX_TIMER_MS);
  // A period of 0 is not "as often as possible": timers and BullMQ's repeatable jobs reject it.
  if (opts.positive && ms <= 0) throw new InvalidInputError(`${flag} must be longer than 0`);
  return ms;
}

function duration(
  text: string | undefined,
  flag: string,
  opts: DurationFlagOptions = {},
): number | undefined {
  if (text === undefined) return undefined;
  return parseDurationFlag(text, flag, opts);
}

/** Resolves the options of a worker that runs here (manual, or inside a Slurm allocation). */
export function workerOptionsFromFlags(flags: WorkerFlags, startedAt = Date.now()): WorkerOptions {
  // The original jtm-worker's default pool and its `default` (= small) are argv.ts's, for the legacy binary only.
  if (flags.pool_name === undefined) throw new InvalidInputError('no pool given: use -p/--pool_name (-tp)');
  const pool = validatePoolName(flags.pool_name);
  const workerId =
    flags.worker_id ?? `${hostname().split('.')[0]}-${process.pid}-${randomBytes(3).toString('hex')}`;
  if (!WORKER_ID.test(workerId)) throw new InvalidInputError(`invalid worker id ${JSON.stringify(workerId)}`);
  const jobTime = validateTime(flags.job_time, 'job time (-t)');
  const slurmJobId = flags.slurm_job_id ?? 0;
  // A worker inside an allocation lives as long as the allocation's wall time; --lifetime says so without Slurm.
  const lifeMs =
    // 0 has no meaning (the original had no such flag): a worker that may start no task, or stops at once.
    // Compared with the clock each second, not a timer: as long as a Slurm allocation may be.
    duration(flags.lifetime, '--lifetime', { positive: true, maxMs: Number.MAX_SAFE_INTEGER }) ??
    (slurmJobId > 0 && jobTime ? parseDuration(jobTime) : undefined);
  const memPerNode = normaliseMemory(flags.mem, 'memory (-m)') ?? '';
  const memPerCore = normaliseMemory(flags.mem_per_cpu, 'memory per cpu (-mc)') ?? '';
  const workerType = flags.worker_type === 'dynamic' ? 2 : 0;
  const taskMemLimitBytes =
    flags['task-mem-limit'] !== undefined
      ? sizeBytes(flags['task-mem-limit'], '--task-mem-limit')
      : workerType === 2
        ? dynamicTaskLimit(memPerNode, flags.num_worker_per_node ?? 1, flags.slots)
        : undefined;
  return {
    pool,
    workerId,
    slots: flags.slots,
    endOfLife: lifeMs === undefined ? undefined : startedAt + lifeMs,
    slurmJobId,
    workerType,
    numCores: flags.cpus_per_task ?? availableParallelism(),
    memPerNode,
    memPerCore,
    jobTime: jobTime ?? null,
    workersOnNode: flags.num_worker_per_node ?? 1,
    idleTimeoutMs: duration(flags['idle-timeout'], '--idle-timeout', {
      positive: true,
      maxMs: Number.MAX_SAFE_INTEGER,
    }),
    shutdownGraceMs: duration(flags['shutdown-grace'], '--shutdown-grace') ?? 20_000,
    taskMemLimitBytes,
    ...(flags.zerofile ? { allowEmptyOutputs: true } : {}),
  };
}

/** Runs a worker until it is stopped (signal, idle timeout, pool removal); resolves then. */
export async function runWorker(
  open: () => Promise<JtmContext>,
  flags: WorkerFlags,
  config: Config,
  logger: Logger,
): Promise<{ worker_id: string }> {
  const opts = workerOptionsFromFlags(flags);
  // The signal handlers come first: a SIGTERM while the worker loads, connects or starts would otherwise end it
  // with Node's default (exit 143, nothing logged) instead of its documented stop. A stop asked before the
  // worker can take it ends the start; a drain waits for the worker.
  let worker: RunningWorker | undefined;
  let asked: { force: boolean } | undefined;
  let drainAsked = false;
  /** A stop signal came (before or after the worker could take it). */
  let stopRequested = false;
  const earlyStop = new AbortController();
  // Inside a Slurm allocation SIGTERM means Slurm is ending it (scancel, walltime) and has signalled every
  // process of the step, tasks included: give the tasks back to the queue at once instead of recording the
  // signal as their failure.
  const uninstall = installShutdown(
    {
      stop: async force => {
        stopRequested = true;
        const now = force || opts.slurmJobId > 0;
        if (worker) return worker.stop(now);
        asked = { force: now || (asked?.force ?? false) };
        earlyStop.abort();
      },
      drain: () => (worker ? worker.drain() : void (drainAsked = true)),
    },
    logger,
  );
  try {
    // The pty host is a Node process of its own: started before this one loads BullMQ and connects, its start
    // overlaps them instead of following them (a new Slurm allocation's first task waits for both).
    startTaskHost(config);
    const { startWorker } = await import('../worker/start-worker.js');
    // Connecting waits for as long as Redis does not answer: a stop meanwhile does not wait for it.
    const ctx = asked ? undefined : await untilAborted(open(), earlyStop.signal);
    if (ctx === undefined || asked) {
      logger.info('worker stopped before it started');
      return { worker_id: opts.workerId };
    }
    let known!: (w: RunningWorker) => void;
    const handleKnown = new Promise<RunningWorker>(r => (known = r));
    const starting = startWorker(ctx, opts, w => {
      worker = w;
      known(w);
      if (asked) void w.stop(asked.force);
      if (drainAsked) w.drain();
    });
    // A stop during the start's last steps ends the run when the stop is done, not when the start is: the
    // control subscription's SUBSCRIBE, sent as Redis went away, waits for it for ever, and the worker stayed
    // up, stopped (1 run in 5 of fail-fast.test.ts's "Redis has gone" under load). A start that fails still
    // fails the run, unless it was stopped first.
    const handle = await Promise.race([starting, handleKnown]);
    await Promise.race([
      handle.stopped,
      starting.then(
        h => h.stopped,
        (err: unknown) => {
          // A start that fails after a stop was asked for is the stop's end: wait for it, do not fail the run.
          if (stopRequested) return handle.stopped;
          throw err;
        },
      ),
    ]);
  } finally {
    uninstall();
    exitSoonAfterStop();
  }
  return { worker_id: opts.workerId };
}

/** `p`'s value, or undefined as soon as `signal` is aborted (`p` itself goes on, unobserved). */
async function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  const aborted = new Promise<undefined>(r => signal.addEventListener('abort', () => r(undefined)));
  return Promise.race([p, aborted]);
}
