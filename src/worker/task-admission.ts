import type { JtmContext } from '../context.js';
import type { Logger, RepeatLogger } from '../logger.js';
import { LogDirSpace } from './disk-space.js';
import { fitsInLife, outliveWhy, wouldBeCutData } from './end-of-life.js';
import type { WorkerState } from './heartbeat.js';
import { memoryTooLow, taskDoesNotFit, taskMemoryLimit } from './memory-limit.js';
import type { WorkerOptions } from './worker-options.js';

/** How long a worker takes no task after a start failed for want of the node's ptys or processes. */
export const NODE_SHORT_PAUSE_MS = 5000;

/**
 * What a worker does with a task it has fetched, before it claims it: takes it; leaves it for later or another
 * worker (the node or this worker cannot run it now); or defers it (it would outlive this worker).
 */
export type AdmissionVerdict = 'take' | 'leave' | 'defer';

/** Why a worker takes no task at all for now, whatever the task: published with its heartbeat (heartbeat.ts). */
export interface PauseReason {
  /** Short, for `jtm pools`: `log dir full`, `low memory`. */
  kind: string;
  /** The full sentence the worker logs. */
  why: string;
}

/**
 * The checks a worker makes before it claims a task — the node's free memory, its log dir's disk, a pause after
 * the node ran out of ptys or processes, its end of life, the room its cgroup leaves — and what they remember
 * between tasks. The lease check is the worker's own (it needs the heartbeat).
 */
export class TaskAdmission {
  private readonly logDirSpace: LogDirSpace;
  /** While the log dir's disk is full: when that was first seen (the worker says when it takes tasks again). */
  private diskFullSince: number | undefined;
  /** Until when the worker takes no task: a start failed for want of the node's ptys or processes. */
  private nodeShortUntil = 0;
  /** When this worker last left a task for a worker with more time (end of life). */
  lastOutlived: number | undefined;
  /** The pause the worker last published (onPause), and the check of it under way (refreshPause). */
  private paused: PauseReason | undefined;
  private checkingPause: Promise<void> | undefined;

  constructor(
    private readonly ctx: JtmContext,
    private readonly opts: WorkerOptions,
    private readonly log: Logger,
    /** Repeats of one kind logged once per window (RepeatLogger), for the disk and for the rest. */
    private readonly logDisk: RepeatLogger,
    private readonly logRepeat: RepeatLogger,
    /** Whether a cgroup above this worker limits its memory (memory-limit.ts taskDoesNotFit). */
    private readonly limitedCgroup: boolean,
    /**
     * The node's memory or the log dir's disk now keeps the worker from taking any task (a reason), or no longer
     * (undefined): called on each change of its words, so that its heartbeat says so (check-worker does not count
     * it); `changed`: paused or not, or why, changed (not only the figures in its words: the free memory read).
     */
    private readonly onPause: (reason: PauseReason | undefined, changed: boolean) => void = () => {},
  ) {
    this.logDirSpace = new LogDirSpace(ctx.config.logDir);
  }

  /**
   * Whether task `id` may be claimed now by the worker, whose phase and number of running tasks are read when
   * each check needs them (after the awaits before it: a drain or a start in another slot meanwhile counts).
   */
  async verdict(id: number, phase: () => WorkerState, running: () => number): Promise<AdmissionVerdict> {
    const { ctx, opts, log } = this;
    const lowMemory = memoryTooLow(ctx.config.memAvailableMarginBytes);
    if (lowMemory) {
      this.setPaused({ kind: 'low memory', why: lowMemory });
      log.warn({ task: id }, `${lowMemory}: task left for later or another worker`);
      return 'leave';
    }
    // Every task's .out and .err go to the log dir by default: on a full disk each would fail at once.
    const lowDisk = await this.logDirSpace.tooLow();
    if (lowDisk) {
      this.setPaused({ kind: 'log dir full', why: lowDisk });
      this.diskFullSince ??= Date.now();
      this.logDisk('warn', 'log dir full', { task: id }, `${lowDisk}: taking no task until space returns`);
      return 'leave';
    }
    this.setPaused(undefined);
    if (this.diskFullSince !== undefined) {
      log.info(
        { fullForMs: Date.now() - this.diskFullSince },
        'the log dir has free space again: taking tasks',
      );
      this.diskFullSince = undefined;
    }
    if (Date.now() < this.nodeShortUntil) return 'leave';
    // A draining worker takes only tasks its end of life will not cut: one it would start and give back at
    // once would come straight back to it (seen: 27 starts in seconds, each spending an attempt). The job
    // carries only the id: a worker with an end of life reads the time limit (one HGET) before the claim.
    if (opts.endOfLife !== undefined) {
      const limit = await ctx.redis.hget(ctx.keys.task(id), 'timeout_ms');
      const timeoutMs = limit ? Number(limit) : undefined;
      const cut = phase() !== 'running' && wouldBeCutData(timeoutMs, opts.endOfLife);
      if (cut || !fitsInLife(timeoutMs, opts.endOfLife)) {
        // Warned once per window: a task whose time limit equals a hand-started worker's `-t` never fits (the
        // allocation's life is counted from its start), and an info line every 5 s was all that said why.
        this.logRepeat(
          'warn',
          // One key per time limit, not per task: the limiter's keys are shared with the worker's other repeats.
          `outlive:${timeoutMs}`,
          {
            task: id,
            task_time_limit_ms: timeoutMs,
            life_left_ms: Math.max(0, opts.endOfLife - Date.now()),
          },
          `task would outlive this worker (${outliveWhy(timeoutMs, opts.endOfLife, cut)}): left for a worker with more time`,
        );
        this.lastOutlived = Date.now();
        return 'defer';
      }
    }
    // In a cgroup with a limit (a Slurm job's), a task whose own memory limit is more than the room the running
    // tasks leave waits for that room, here or on another worker: started anyway, the kernel killed the older
    // task that had been running within its share (adversary 8 I10). One HGET, only there and beside other runs.
    if (this.limitedCgroup && running() > 0) {
      const memLimit = await ctx.redis.hget(ctx.keys.task(id), 'mem_limit');
      const limit = taskMemoryLimit(memLimit ? { mem_limit: memLimit } : {}, opts);
      const why = limit === undefined ? undefined : taskDoesNotFit(limit, running());
      if (why) {
        this.logRepeat(
          'warn',
          `room:${limit}`,
          { task: id },
          `${why}: task left for later or another worker`,
        );
        return 'leave';
      }
    }
    return 'take';
  }

  /**
   * Reads the node's memory and the log dir's disk again, apart from any claim: a worker with no task to claim
   * must still say when it could take none (and when it can again). One check at a time, never awaited by the
   * heartbeat: a statfs of a hung shared filesystem must not hold the beat that keeps the worker's lease.
   */
  refreshPause(): void {
    this.checkingPause ??= (async () => {
      try {
        const lowMemory = memoryTooLow(this.ctx.config.memAvailableMarginBytes);
        const lowDisk = lowMemory ? undefined : await this.logDirSpace.tooLow();
        this.setPaused(
          lowMemory
            ? { kind: 'low memory', why: lowMemory }
            : lowDisk
              ? { kind: 'log dir full', why: lowDisk }
              : undefined,
        );
      } catch {
        // Unknown this time: the last reading stands.
      } finally {
        this.checkingPause = undefined;
      }
    })();
  }

  private setPaused(reason: PauseReason | undefined): void {
    if (reason?.why === this.paused?.why) return;
    const changed = reason?.kind !== this.paused?.kind;
    this.paused = reason;
    this.onPause(reason, changed);
  }

  /** A start failed for want of the node's ptys, processes or descriptors: no task for a while. */
  pauseForNodeShort(): void {
    this.nodeShortUntil = Date.now() + NODE_SHORT_PAUSE_MS;
  }

  /** A task failed on a full disk: the next claim reads the disk again instead of a reading from before. */
  diskFilled(): void {
    this.logDirSpace.forget();
  }
}
