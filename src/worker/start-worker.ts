import { realpath } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { DelayedError, WaitingError, Worker, type Job } from 'bullmq';
import { Cluster } from 'ioredis';

import { forPool, type JtmContext } from '../context.js';
import { discardCause, isConnectionError, isRightsError, toError } from '../errors.js';
import { rateLimited } from '../logger.js';
import { taskIdOfJob, type TaskJob, type TaskJobData } from '../tasks/job-data.js';
import type { Fence } from '../store/task-store.js';
import { TaskStatus } from '../tasks/status.js';
import { Accounting, type TaskAccounting } from './accounting.js';
import { Heartbeat } from './heartbeat.js';
import { killEarlierRuns } from './leftovers.js';
import { isJobLockLoss } from './lock-loss.js';
import { watchLostFetches } from './lost-fetches.js';
import { OutputTurns } from './output-turns.js';
import { checkLogDir } from './output-files.js';
import { OutputFollower } from './output-stream.js';
import { flagMemoryRetry, taskMemoryLimit } from './memory-limit.js';
import { memoryRoom } from './cgroup.js';
import { monotonicMs } from './monotonic.js';
import { recordOutcome, TaskUnsuccessful } from './record-outcome.js';
import { endTask, writeRcIfJtmEnded } from '../tasks/end-task.js';
import type { WorkerIdentity } from './resource-sample.js';
import { Sampler } from './sampler.js';
import { checkTaskExec } from './task-argv.js';
import { TaskRun, type StopCause, type TaskOutcome } from './task-run.js';
import { onSharedPtyHostEnd } from './run-in-pty.js';
import { startTaskHost, taskEnvironment } from './task-environment.js';
import { DEFER_DELAY_MS, UNSUBMITTED_WAITS_MS, type WorkerOptions } from './worker-options.js';
import { startLifeTimer, wouldBeCut } from './end-of-life.js';
import {
  becomesTrue,
  settleOutcome,
  STOP_GIVEBACK_LIMIT,
  stopLimitReason,
  type SettleContext,
} from './settle-outcome.js';
import { TaskAdmission } from './task-admission.js';
import { startSelfFencing } from './run-fencing.js';
import { Executions, type Execution } from './executions.js';
import { startHousekeeping } from './housekeeping.js';
import { LiveState } from './live-state.js';
import { workerBeat } from './worker-beat.js';
import { bounded, runCleanups } from './cleanup-steps.js';
import { listenForControl, type ControlMessage } from '../control/worker-control.js';
import { warnAboutRedisSettings } from '../redis-settings.js';
import { wallNow } from '../wall-clock.js';

export interface RunningWorker {
  readonly id: string;
  /** Stops taking tasks; running ones get the grace period (or none with `force`), then are re-queued. */
  stop(force?: boolean): Promise<void>;
  /**
   * Stops taking tasks that cannot finish before the end of life; re-queues running ones that cannot. Without
   * an end of life: takes no new task and stops once the running ones end.
   */
  drain(): void;
  /** Resolves when the worker has stopped (by stop(), idle timeout or a pool removal). */
  readonly stopped: Promise<void>;
}

/**
 * Starts a BullMQ worker on the pool's queue. Each job is one task: the worker claims the record
 * (guarded), runs the command in a pty, samples it, and records exactly one final status — or gives
 * the task back to the queue when it is stopped before the task ends.
 *
 * `onStoppable` gets the worker's handle as soon as it can be stopped, before its start is over (a signal
 * may arrive while it subscribes or sends its first heartbeat): a stop then ends the start where it is.
 */
export async function startWorker(
  anyShard: JtmContext,
  opts: WorkerOptions,
  onStoppable?: (worker: RunningWorker) => void,
): Promise<RunningWorker> {
  // The worker lives on its pool's shard: its heartbeat, its tasks and their records are all there.
  const ctx = forPool(anyShard, opts.pool);
  const log = ctx.logger.child({ worker: opts.workerId, pool: opts.pool });
  const live = new LiveState();
  // Before the host starts: one that cannot start, or dies at once, is said too.
  onSharedPtyHostEnd(e => {
    if (live.phase === 'stopping') return;
    log.error(
      { ptyHost: e.pid, tasks: e.tasks },
      `the pty host ${e.end} (${e.tasks} running task(s) on it): the next task starts a new one`,
    );
  });
  // First, unless the command started it already: the host's own start (a Node process) overlaps the rest.
  startTaskHost(ctx.config);
  checkTaskExec();
  await checkLogDir(ctx.config.logDir);
  const host = hostname();
  const runs = new Map<number, TaskRun>();
  /** Tasks whose run this worker gave back after killing its tree: a re-run here has no leftovers to look for. */
  const givenBackHere = new Set<number>();
  const outputTurns = new OutputTurns();
  const env = taskEnvironment(ctx.config);
  const heartbeat = new Heartbeat(ctx, opts, host);
  const sampler = new Sampler(
    ctx,
    identity(opts, host),
    ctx.config.sampleIntervalMs,
    ctx.config.watchIntervalMs,
  );
  const accounting = Accounting.open(`jtm-${process.pid}`, ctx.config.accounting === 'procfs', log);
  const stopped = new Promise<void>(r => (live.resolveStopped = r));
  const logDisk = rateLimited(log, ctx.config.logRepeatIntervalMs);
  /** Connection errors (BullMQ's, the heartbeat's) repeat while Redis is down or refusing: once per kind and window. */
  const logRepeat = rateLimited(log, ctx.config.logRepeatIntervalMs);
  const admission = new TaskAdmission(
    ctx,
    opts,
    log,
    logDisk,
    logRepeat,
    memoryRoom() !== undefined,
    (reason, changed) => {
      heartbeat.paused = reason;
      // Published now, not at the next beat (once started: the first beat comes with the registration); new
      // figures of the same pause wait for it (the free memory read changes at every reading).
      if (!changed || live.control === undefined || live.stopping !== undefined) return;
      void beat();
      // No fetch while it can take no task: each job it fetched went back delayed, kept from the pool's other
      // workers for seconds (adversary 38 M1: 5–65 s from submit to end beside an idle worker, 0.15 s without
      // the paused one). Its running tasks go on; BullMQ's own stalled check runs on the other workers.
      if (reason && !queuePaused) {
        queuePaused = true;
        void worker.pause(true).catch(err => log.warn({ err }, 'could not pause the queue'));
      } else if (!reason && queuePaused) {
        queuePaused = false;
        void worker.resume();
      }
    },
  );
  /** The BullMQ worker was paused by a pause of the worker (admission's onPause), not by a stop. */
  let queuePaused = false;
  const settling: SettleContext = {
    ctx,
    log,
    logRepeat,
    logDisk,
    workerId: opts.workerId,
    slurmJobId: opts.slurmJobId,
    admission,
    stopping: () => live.phase === 'stopping',
    signalled: () => live.signalled,
  };

  const executions = new Executions(opts.workerId);

  /** Runs whose pid and accounting are not written yet (their timer is still pending). */
  const startFieldsDue = new WeakMap<
    TaskRun,
    { timer: NodeJS.Timeout; fields: Record<string, string | number | undefined> }
  >();
  /** Each run's follower of its stdout file (made once the file is ready, so not for a run that never starts). */
  const outputs = new WeakMap<TaskRun, OutputFollower>();

  const beat = workerBeat({
    ctx,
    workerId: opts.workerId,
    log,
    logRepeat,
    live,
    heartbeat,
    runs,
    onRightsRefused: err => refusedRights(err),
    refreshPause: () => admission.refreshPause(),
  });

  const newRun = (data: TaskJobData, fence: Fence, acct: TaskAccounting, claimEpoch: number): TaskRun => {
    const run: TaskRun = new TaskRun(opts.allowEmptyOutputs ? { ...data, allow_empty_outputs: true } : data, {
      startDeadline: () => heartbeat.startDeadline(claimEpoch),
      logDir: ctx.config.logDir,
      env: { ...env, ...acct.env },
      memory: acct,
      killGraceMs: ctx.config.killGraceMs,
      leftoverGraceMs: ctx.config.leftoverGraceMs,
      logger: log,
      token: fence.runToken,
      onOutputReady: (path, regular) => {
        const output = new OutputFollower(
          ctx,
          data.id,
          regular ? path : undefined,
          ctx.config.outputTailBytes,
          ctx.config.outputKeepBytes,
          fence.runToken,
        );
        outputs.set(run, output);
        output.start();
      },
      // The pid and how the run is accounted: written by a fenced write once the task has run for
      // START_FIELDS_DELAY_MS, or with the end for a task that ends sooner (one script run fewer per short task).
      // stdout_file with them: a follower reads from the file what the Redis copy (a tail) no longer holds, so it
      // needs the path while the task runs, not only once it has ended.
      onStarted: pid => {
        const fields = {
          pid,
          stdout_file: run.stdoutPath,
          stderr_file: storedStderrFile(data, run),
          ...acct.recordFields(),
        };
        const timer = setTimeout(() => {
          startFieldsDue.delete(run);
          void ctx.tasks.setFenced(data.id, fence, fields).catch(() => {});
        }, START_FIELDS_DELAY_MS);
        startFieldsDue.set(run, { timer, fields });
      },
    });
    return run;
  };
  /** Moves the execution's job to the delayed set: a later delivery of it is a new execution (`left`). */
  const putOff = async (exec: Execution, delayMs: number): Promise<void> => {
    await exec.job.moveToDelayed(Date.now() + delayMs, exec.token);
    exec.left = true;
  };
  const defer = async (exec: Execution, delayMs = DEFER_DELAY_MS): Promise<never> => {
    await putOff(exec, delayMs);
    throw new DelayedError();
  };

  /** A task this worker cannot start now (low memory, full disk): left for later or another worker. */
  const leaveForLater = async (exec: Execution): Promise<never> => {
    await putOff(exec, DEFER_DELAY_MS);
    // Redis hands a ready job to the worker that has waited longest, which would be this one again and
    // again: holding the slot until the job is ready lets another worker take it (released before, this worker
    // took it back every time: a starved worker kept a task from a fed one). A delivery of the job to another
    // slot of this worker meanwhile is a new execution (`left`); BullMQ tracks locks by job id, so this
    // processing's end stops the renewal of that delivery's lock: if it runs the task past the lock, the stalled
    // check hands the job back and the delivery attaches to the run (no second run; the record is exact).
    await becomesTrue(() => live.phase !== 'running', DEFER_DELAY_MS + 1000);
    throw new DelayedError();
  };

  const executeRun = async (exec: Execution): Promise<unknown> => {
    const { id } = exec;
    const verdict = await admission.verdict(
      id,
      () => live.phase,
      () => runs.size,
    );
    if (verdict === 'leave') return leaveForLater(exec);
    if (verdict === 'defer') return defer(exec);
    // A worker without a lease takes no new task (it would have to fence it at once): renew it first. Nor one
    // whose lease would need fencing within the next beat: after Redis paused, the beat that was waiting for it
    // renewed the lease only from when it was sent, and a task claimed on that was fenced again ≈ 0.4 s later,
    // before the next beat (adversary-2 D1: a give-back counted twice, lostconnection). The second beat is a
    // fresh one (the first may be that old one, still in flight).
    const interval = ctx.config.heartbeatIntervalMs;
    for (let i = 0; i < 2 && heartbeat.mustFence(monotonicMs() + interval); i++) await beat();
    if (heartbeat.mustFence()) return defer(exec);
    const { runToken } = exec.fence;
    // The lease the last claim was sent under: one that broke after it may have let another worker take the task.
    let claimEpoch = heartbeat.leaseEpoch;
    let claim = await ctx.tasks.start(id, opts.workerId, host, runToken, exec.token ?? '');
    // A job fetched between its submit's addBulk and the submit's commit: the commit follows within
    // milliseconds, unless the submit died (then the task must never run: deferred until reconciliation fails
    // it). Only a young record is waited for, so the jobs of a dead submit do not hold the slots.
    const young = (c: typeof claim): boolean =>
      c.kind === 'unsubmitted' && wallNow() - c.queuedAt < UNSUBMITTED_YOUNG_MS;
    for (const wait of UNSUBMITTED_WAITS_MS) {
      if (!young(claim)) break;
      await sleep(wait);
      claimEpoch = heartbeat.leaseEpoch;
      claim = await ctx.tasks.start(id, opts.workerId, host, runToken, exec.token ?? '');
    }
    // Not committed yet (a large submit still adding jobs): looked at again soon; an old one rarely.
    if (claim.kind === 'unsubmitted')
      return defer(exec, young(claim) ? UNSUBMITTED_RETRY_MS : DEFER_DELAY_MS);
    if (claim.kind === 'busy') return defer(exec);
    // Ended by the claim itself (lost with no retries left): the rc decision of every JTM-made end.
    if (claim.kind === 'skip' && claim.status === TaskStatus.lostconnection)
      await writeRcIfJtmEnded(ctx, id, claim.status);
    if (claim.kind !== 'started') return { skipped: claim.kind === 'skip' ? claim.status : 'missing' };
    const data = claim.spec;
    const givenBack = data.stop_givebacks ?? 0;
    if (givenBack >= STOP_GIVEBACK_LIMIT) {
      const reason = stopLimitReason(givenBack);
      log.error({ task: id, stop_givebacks: givenBack }, reason);
      await endTask(ctx, id, { fence: exec.fence, to: TaskStatus.lostconnection, reason });
      return { skipped: TaskStatus.lostconnection };
    }
    const acct = accounting.forTask(
      id,
      taskMemoryLimit(data, opts),
      join(ctx.config.logDir, 'tasks', `${id}.times`),
    );
    try {
      return await executeClaimed(exec, newRun(data, exec.fence, acct, claimEpoch), acct, claim.attempt);
    } finally {
      acct.close(); // idempotent: a run that started closed it already, with its final figures
    }
  };

  const executeClaimed = async (
    exec: Execution,
    run: TaskRun,
    acct: TaskAccounting,
    attempt: number,
  ): Promise<unknown> => {
    const data = run.data;
    exec.run = run;
    live.lastBusy = Date.now();
    runs.set(data.id, run);
    live.busyPeak = Math.max(live.busyPeak, runs.size);
    if (live.phase !== 'running' && wouldBeCut(run, opts.endOfLife)) run.stop('shutdown');
    // A re-run starts only once what its lost runs left on this node is gone (at most one live execution).
    // Not after a run this very worker gave back: it killed that run's whole tree itself (and the scan, between
    // the claim and the start, is time a loaded node may not have before the lease's start deadline).
    if (attempt > 1 && !givenBackHere.delete(data.id)) {
      await killEarlierRuns(ctx, data.id, run.token, { host, logger: log }).catch((err: unknown) =>
        log.warn({ task: data.id, err }, 'could not look for processes of earlier runs'),
      );
    }
    const endTurn = await outputTurns.take(
      [
        { path: run.stdoutPath, named: data.stdout !== undefined },
        { path: run.stderrPath, named: data.stderr !== undefined },
      ],
      path =>
        log.warn(
          { task: data.id, path },
          'another task running here writes to the same output file: this one starts when it has ended',
        ),
      run.stopRequested,
    );
    log.info({ task: data.id, attempt }, 'task started');
    let outcome: TaskOutcome;
    /** Fields the end writes with the status (one fenced write): where stdout went and how much of it, and the
     *  pid and accounting of a run that ended before they were written. */
    let endFields: Record<string, string | number | undefined> = {};
    // When the run ended, read as it did: what follows may wait for Redis (the output's last part, the settling
    // reads, the write itself), and an end stamped when Redis answered again grew by the outage: a run stopped at
    // 16:42:26.9 was recorded given back at 16:42:32.3 (adversary 21 F7).
    let endedAt = wallNow();
    try {
      const running = run.run();
      const rcFile = data.rc_file;
      sampler.add(run, exec.job, acct, rcFile ? () => void flagMemoryRetry(rcFile) : undefined);
      outcome = await running;
      endedAt = wallNow();
    } finally {
      try {
        sampler.remove(data.id);
        acct.close();
        run.sampleState = acct.apply(run.sampleState);
        runs.delete(data.id);
        live.lastBusy = Date.now();
        const due = startFieldsDue.get(run);
        if (due) {
          clearTimeout(due.timer);
          startFieldsDue.delete(run);
          endFields = { ...due.fields };
        }
        // The task's processes are gone: the file is complete; the Redis copy gets its last part now.
        const output = outputs.get(run);
        if (output) {
          await output.finish();
          endFields = {
            ...endFields,
            stdout_file: run.stdoutPath,
            output_bytes: output.bytes,
            output_mtime: output.mtimeMs,
          };
          // A FIFO or a device: what went there was not kept (/dev/null, by any name: nothing to keep). A
          // follower says so.
          if (!output.followed && !(await isDevNull(run.stdoutPath))) endFields['output_unfollowed'] = 1;
          const stderrFile = storedStderrFile(data, run);
          if (stderrFile !== undefined) endFields['stderr_file'] = stderrFile;
        }
      } finally {
        // After the last read of the file: the next run with the same file empties it as it starts.
        endTurn();
      }
    }
    ({ outcome, endFields } = await settleOutcome(settling, run, outcome, endFields));
    // A run given back needs no attaching: its job, once moved back to wait, is a fresh delivery for start-task.
    if (outcome.kind === 'requeue') executions.forget(exec);
    if (outcome.kind === 'requeue') {
      // Bounded: tasks that never come back here would pile up; forgetting them only costs a scan.
      if (givenBackHere.size >= GIVEN_BACK_MEMORY) givenBackHere.clear();
      givenBackHere.add(data.id);
    }
    // The job and token of the newest delivery: the one whose lock is valid now.
    return recordOutcome(ctx, log, exec.job, exec.token, run, outcome, exec.fence, endFields, endedAt);
  };

  const processor = async (job: Job<TaskJob>, token?: string): Promise<unknown> => {
    const id = job.data.id;
    let exec = executions.get(id);
    if (exec && !exec.left) {
      log.warn({ task: id }, 'job delivered again while its task runs here: attached to the run');
      exec.job = job;
      exec.token = token;
      // The manager moves a dead worker's job only under the lock recorded here: keep it the current one.
      void ctx.tasks.setFenced(id, exec.fence, { job_token: token ?? '' }).catch(() => {});
    } else {
      const e = (exec = executions.begin(id, job, token));
      exec.done = executeRun(e).finally(() => {
        executions.forget(e);
        executions.ended(e.id);
      });
    }
    const current = exec;
    // A delivery superseded by a later one leaves the job to it: BullMQ must not finish the job with a stale lock.
    const superseded = (): boolean => current.token !== token;
    let value: unknown;
    try {
      value = await current.done;
    } catch (err) {
      // Not failed: the job is left to its lock, which expires, and the stalled check gives it to another worker.
      if (isRightsError(err)) {
        refusedRights(err);
        throw new WaitingError();
      }
      if (superseded()) throw new WaitingError();
      throw err;
    }
    if (superseded()) throw new WaitingError();
    return value;
  };

  const worker = new Worker<TaskJob>(ctx.keys.poolQueue(opts.pool), processor, {
    connection: ctx.redis,
    prefix: ctx.keys.queuePrefix,
    concurrency: opts.slots,
    // Our records decide what a lost task becomes; BullMQ only puts stalled jobs back in the queue.
    maxStalledCount: 1000,
    stalledInterval: ctx.config.stalledIntervalMs,
    lockDuration: ctx.config.lockDurationMs,
    skipVersionCheck: true,
    autorun: false,
  });
  // While Redis is down BullMQ reports every reconnect attempt of each of its connections: once per kind and
  // minute is enough (docs/reliability.md), the count of the others goes with the next line.
  worker.on('error', err => {
    if (isRightsError(err)) refusedRights(err);
    const message = toError(err).message;
    // Repeats are counted per kind of message (numbers aside), not per job or port.
    const kind = message.replace(/\d+/g, '#');
    // A lost job lock: routine in a recovery (lock-loss.ts), one warning without BullMQ's stack.
    if (isJobLockLoss(err))
      logRepeat(
        'warn',
        kind,
        { err: message },
        "BullMQ lost a job's lock (a run given back, fenced or taken over, or an outage): the task's record decides what becomes of it",
      );
    // Redis unreachable (a restart, a network fault): routine, the worker reconnects by itself and its runs are
    // stopped, said at error level, only if it lasts past their lease. A warning without a stack (an error with
    // BullMQ's stack at every restart read like a crash: adversary 30 F4).
    else if (isConnectionError(err)) logRepeat('warn', kind, { err: message }, 'worker error');
    else logRepeat('error', kind, { err }, 'worker error');
  });
  /**
   * Redis refuses this worker's user a command it needs to take or record tasks (an ACL trimmed one command
   * too far): it could only hold the jobs it fetches, while check-worker, pools and the manager counted its
   * slots as live. It stops (running tasks get their grace) and the process exits 255, saying why.
   */
  let refused = false;
  const refusedRights = (err: unknown): void => {
    if (refused) return;
    refused = true;
    log.error(
      { err: toError(discardCause(err)).message },
      "Redis refuses this worker's user a command JTM needs (ACL): stopping; give the user the rights docs/reliability.md lists",
    );
    process.exitCode = 255;
    void stop();
  };
  worker.on('failed', (job, err) => {
    if (!(err instanceof TaskUnsuccessful)) log.error({ task: job?.data.id, err }, 'task processing failed');
  });
  // A job fetched as the connection dropped, its answer lost: put back at once, not after its lock and the stalled
  // check (lost-fetches.ts). Not for a Cluster (no single connection's queues to look at).
  const stopLostFetches =
    ctx.redis instanceof Cluster
      ? () => {}
      : watchLostFetches({
          redis: ctx.redis,
          worker,
          activeKey: ctx.keys.poolQueueKey(opts.pool, 'active'),
          jobKeyPrefix: ctx.keys.poolQueueKey(opts.pool, ''),
          runsHere: jobId => {
            const id = taskIdOfJob(jobId);
            return id !== undefined && executions.runsHere(id);
          },
          logger: log,
        });

  /** `graceMs`: the kill's grace (undefined: each run's own, by its cause). */
  const stopAll = (
    cause: StopCause,
    filter: (r: TaskRun) => boolean = () => true,
    graceMs?: number,
  ): void => {
    for (const r of runs.values()) if (filter(r)) r.stop(cause, graceMs);
  };

  /** How long a goodbye to Redis may take: not long when Redis is not even connected (it cannot be said). */
  const goodbyeMs = (ms: number): number => (ctx.redis.status === 'ready' ? ms : 500);

  /**
   * Waits for the running tasks; once none runs, closing only needs Redis to say goodbye: without Redis, give up
   * on that. Looked at every second: a worker whose Redis had gone took 5 s here before it noticed that nothing
   * ran (13 s from SIGTERM to exit in all).
   */
  const closeQueueWorker = async (): Promise<void> => {
    const closed = worker.close();
    while (
      (await bounded(
        closed.then(() => true),
        1000,
      )) === undefined
    ) {
      if (runs.size === 0) {
        await bounded(worker.close(true), goodbyeMs(2000));
        break;
      }
    }
  };

  /** `finish`: running tasks may take as long as they need (remove-pool); a later plain stop arms the grace. */
  const stop = (force = false, finish = false): Promise<void> => {
    // Forced (a second signal, SIGQUIT): the runs are killed now, without the kill's grace.
    if (force) stopAll('shutdown', undefined, 0);
    else if (!finish) live.grace ??= setTimeout(() => stopAll('shutdown'), opts.shutdownGraceMs);
    live.stopping ??= (async () => {
      live.phase = 'stopping';
      log.info({ running: runs.size, finish }, 'worker stopping');
      await runCleanups(
        [
          // Unbounded: running tasks end (or get their grace) first; the step bounds its goodbye to Redis.
          { name: 'close the queue worker', run: closeQueueWorker },
          {
            name: 'clear the timers',
            run: () => {
              clearTimeout(live.grace);
              clearTimeout(live.quickBeat);
              for (const t of live.timers) clearInterval(t);
              stopLostFetches();
            },
          },
          { name: 'stop the leftover sweeps', run: () => live.leftovers?.stop() },
          { name: 'stop the sampler', run: () => sampler.stop() },
          { name: 'dispose of the accounting', run: () => accounting.dispose() },
          // Bounded: with Redis unreachable these would wait for it forever, and an exiting worker need not. Side by
          // side: neither needs the other.
          {
            name: 'close the control subscription and remove the heartbeat',
            boundMs: 3000,
            run: () =>
              bounded(
                Promise.all([(async () => (await live.control)?.close())(), heartbeat.remove()]),
                goodbyeMs(3000),
              ),
          },
        ],
        log,
      );
      log.info('worker stopped');
      live.resolveStopped();
    })();
    return live.stopping;
  };

  const drain = (): void => {
    if (live.phase !== 'running') return;
    // Without an end of life there is no end to drain towards, and every task "fits": the drain let it take
    // every new task while `pools` and check-worker called it draining, for good (adversary 36 M4). Its end is
    // now: it takes no new task, its running tasks go on as long as they need (no grace: nothing cuts them),
    // and it exits 0 once they end, as a worker with an end of life stops at its end.
    if (opts.endOfLife === undefined) {
      log.info(
        { running: runs.size },
        'no end of life: taking no new task, stopping once the running tasks end',
      );
      void stop(false, true);
      // Published now, not at the next beat: check-worker stops counting its slots from the signal.
      void heartbeat.beat([...runs.keys()], live.phase).catch(() => {});
      return;
    }
    live.phase = 'draining';
    log.info('draining: tasks that cannot finish in the remaining life are re-queued');
    stopAll('shutdown', r => wouldBeCut(r, opts.endOfLife));
    void heartbeat.beat([...runs.keys()], live.phase).catch(() => {});
  };

  const onControl = (msg: ControlMessage): void => {
    if (msg.type === 'kill') {
      const run = runs.get(msg.task);
      if (run) {
        log.info({ task: msg.task }, 'kill requested');
        run.stop('kill');
      }
    } else if (msg.type === 'stop') {
      void stop(msg.force ?? false, msg.finish ?? false);
    }
  };
  const handle: RunningWorker = {
    id: opts.workerId,
    stop: (force?: boolean) => {
      live.signalled = true;
      return stop(force);
    },
    drain,
    stopped,
  };
  onStoppable?.(handle);
  // Registration and the control subscription (a connection of its own) in flight together: a new Slurm
  // allocation's first task waits for both. Both are done before the first fetch, so a kill of a task that
  // runs here always finds the subscription; a pool-wide stop published before it is missed as one published
  // while the worker was still loading would be. The subscription is recorded as soon as it is asked for: a
  // stop during its SUBSCRIBE still closes it.
  live.control = listenForControl(ctx, opts, onControl);
  const [control, registered] = await Promise.allSettled([
    live.control,
    heartbeat.register(live.phase, () => live.stopping !== undefined),
  ]);
  if (control.status === 'rejected' || registered.status === 'rejected') {
    if (control.status === 'fulfilled') await control.value.close().catch(() => {});
    throw control.status === 'rejected' ? control.reason : (registered as PromiseRejectedResult).reason;
  }
  // After the await, a stop that came meanwhile has begun its cleanups: what is not started yet must then not
  // start at all (a timer, sweep or run loop started behind them would outlive the worker).
  if (live.stopping) return handle;

  live.timers.push(setInterval(() => void beat(), ctx.config.heartbeatIntervalMs));
  live.timers.push(startSelfFencing(heartbeat, runs, log, ctx.config.heartbeatIntervalMs));
  live.timers.push(
    startLifeTimer({
      idleTimeoutMs: opts.idleTimeoutMs,
      endOfLife: opts.endOfLife,
      log,
      isStopping: () => live.stopping !== undefined,
      runningCount: () => runs.size,
      lastBusy: () => live.lastBusy,
      state: () => live.phase,
      onIdle: () => void stop(false),
      // A dynamic pool's worker that only leaves its pool's tasks (none fits in its remaining life) held its
      // node until its idle timeout while the manager booked the next allocation (adversary 7, H4).
      outlived: () =>
        opts.workerType === 2 &&
        // Nothing being claimed either (runs holds only tasks past their claim).
        executions.size === 0 &&
        admission.lastOutlived !== undefined &&
        admission.lastOutlived > live.lastBusy &&
        Date.now() - live.lastBusy >= OUTLIVED_IDLE_MS,
      onEndOfLife: () => drain(),
      onLifeOver: () => void stop(false),
    }),
  );

  sampler.start();
  void worker.run().catch(err => log.error({ err }, 'worker run loop failed'));
  startHousekeeping({ ctx, workerId: opts.workerId, host, log, live, ownTokens: () => executions.tokens() });
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
  // After the start, not before it: a new allocation's first task does not wait for this round trip.
  void warnAboutRedisSettings(ctx);
  return handle;
}

/**
 * How long a task runs before its pid and accounting mode are written on their own; a task that ends sooner
 * has them written with its end. Short tasks are most of the Redis work per task, and `status` of a task
 * that has run for a second shows its pid.
 */
const START_FIELDS_DELAY_MS = 1000;

/** How many given-back tasks a worker remembers (givenBackHere). */
const GIVEN_BACK_MEMORY = 10_000;

/**
 * How long a dynamic pool's worker stays idle once every task it was handed would outlive it, before it gives
 * its allocation back (end-of-life.ts `outlived`): a little more than a deferred task's return (DEFER_DELAY_MS).
 */
const OUTLIVED_IDLE_MS = 10_000;

/** How soon a job whose submit has not committed yet is fetched again, while its record is young. */
const UNSUBMITTED_RETRY_MS = 1000;
/** A queued record younger than this may belong to a submit still writing (by the submit host's clock). */
const UNSUBMITTED_YOUNG_MS = 10_000;

/**
 * Where the run's stderr goes, for the record only when `status --json` cannot derive it (stderrFileOf; one field
 * fewer in most records): a task that named its stdout but not its stderr, or one whose stderr the worker expanded
 * ($VARS, ~): shown as submitted, it named a path that does not exist (adversary 36 L1).
 */
function storedStderrFile(data: TaskJobData, run: TaskRun): string | undefined {
  const derivable = data.stderr === undefined ? data.stdout === undefined : run.stderrPath === data.stderr;
  return derivable ? undefined : run.stderrPath;
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

/** Whether `path` is /dev/null, by any name (a symbolic link to it: adversary 28 F5). */
async function isDevNull(path: string): Promise<boolean> {
  return path === '/dev/null' || (await realpath(path).catch(() => '')) === '/dev/null';
}
