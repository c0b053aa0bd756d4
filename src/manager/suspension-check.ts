import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { listActiveJobs, type SlurmJobState } from '../slurm/slurm-commands.js';

/** How long a sweep waits for squeue (within its lease, 5 s at least): then it goes on without it. */
export const SUSPENSION_SWEEP_WAIT_MS = 3_000;
/** The longest a dead worker's burial waits for an answer before its tasks are counted as lost anyway. */
export const SUSPENSION_ANSWER_DEADLINE_MS = 120_000;

/**
 * How long a dead worker's burial may wait for squeue (and how long one squeue may take): until its job's BullMQ
 * lock lapses, less the time it took to find the worker dead. Past that, another worker of the pool takes the task
 * over through BullMQ's stalled check, which counts a loss: waiting longer would gain nothing. With the defaults
 * (30 s lock, 3 × 2 s beats) 24 s; at least the sweep's own wait, at most 2 minutes.
 */
export function suspensionDeadlineMs(config: {
  lockDurationMs: number;
  heartbeatIntervalMs: number;
  missedBeats: number;
}): number {
  const beforeTakeover = config.lockDurationMs - config.heartbeatIntervalMs * config.missedBeats;
  return Math.min(SUSPENSION_ANSWER_DEADLINE_MS, Math.max(SUSPENSION_SWEEP_WAIT_MS, beforeTakeover));
}

/** One squeue of this user's jobs: started at `askedAt` (the sweep's clock), its answer once it came. */
export interface SlurmLook {
  askedAt: number;
  answer?: { jobs: Map<string, SlurmJobState> } | { err: Error };
}

/** What to do now with a dead worker that ran in allocation `job`. */
export type SuspensionVerdict =
  { kind: 'suspended' } | { kind: 'lost'; why?: string } | { kind: 'wait' } | { kind: 'ask' };

/**
 * The decision for one dead worker, from the latest squeue (`look`): an answer asked after the worker was found
 * dead (`deadSince`) says whether its allocation is suspended; an older answer may predate the suspension and
 * is not used. No usable answer: ask (none under way) or wait for one, until the deadline; then lost.
 */
export function suspensionVerdict(
  job: string,
  deadSince: number,
  look: SlurmLook | undefined,
  now: number,
  deadlineMs = SUSPENSION_ANSWER_DEADLINE_MS,
): SuspensionVerdict {
  const fresh = look !== undefined && look.askedAt >= deadSince;
  if (fresh && look.answer && 'jobs' in look.answer)
    return look.answer.jobs.get(job) === 'suspended' ? { kind: 'suspended' } : { kind: 'lost' };
  if (now - deadSince >= deadlineMs) {
    const why = look?.answer && 'err' in look.answer ? look.answer.err.message : 'no answer';
    return {
      kind: 'lost',
      why: `squeue gave no usable answer for ${Math.round(deadlineMs / 1000)} s (${why})`,
    };
  }
  // Under way (whether asked before or after the death): one squeue at a time; a new one once it answered.
  if (look !== undefined && look.answer === undefined) return { kind: 'wait' };
  return { kind: 'ask' };
}

/**
 * Tells dead workers whose Slurm allocation is suspended (scontrol suspend, preemption by suspension, gang
 * scheduling: a stop, not a loss) from lost ones, across sweeps (kept in the manager's SweepState). Each
 * suspend was charged as a lost worker: a task whose allocation was suspended twice ended lostconnection, rc 75,
 * though Slurm never ended anything (adversary 18 S2). A squeue that failed or did not answer within the
 * sweep's 3 s counted it as a loss too, which a loaded controller made likely: now such a worker is left in
 * the index (its tasks still `running`, which they may be; reconciliation leaves a worker in the index to the
 * sweep) until an answer asked after its death came, at most until its job's lock would lapse
 * (suspensionDeadlineMs); one squeue under way at a time, outliving the sweep that asked. The state is this
 * manager's: another manager, or this one restarted, starts its own wait. The local cluster's squeue: a
 * worker's SLURM_JOB_ID does not say which cluster of a multi-cluster site it is on.
 */
export class SuspensionCheck {
  private look: SlurmLook | undefined;
  private asking: Promise<void> | undefined;
  private readonly deadSince = new Map<string, number>();
  /** What the last failed squeue said, and the workers last left for later: each said once, not every sweep. */
  private lastFailure: string | undefined;
  private lastLater = '';

  /**
   * For the dead `workers` (all found dead by this sweep): the Slurm job of each that is suspended, the ones to
   * bury now as lost or never in an allocation, and those to leave for a later sweep.
   */
  async sort(
    ctx: JtmContext,
    workers: readonly string[],
    now: number,
  ): Promise<{ bury: Map<string, string | undefined>; later: string[] }> {
    const bury = new Map<string, string | undefined>();
    const later: string[] = [];
    const jobOf = await slurmJobsOf(ctx, workers);
    // Workers no longer dead (a resumed allocation's worker beats again) or buried by another manager.
    for (const w of this.deadSince.keys()) if (!jobOf.has(w)) this.deadSince.delete(w);
    for (const w of workers) if (!jobOf.get(w)) bury.set(w, undefined);
    const deadlineMs = suspensionDeadlineMs(ctx.config);
    const decide = (): Map<string, SuspensionVerdict> => {
      const out = new Map<string, SuspensionVerdict>();
      for (const [w, job] of jobOf) {
        if (!job) continue;
        if (!this.deadSince.has(w)) this.deadSince.set(w, now);
        out.set(w, suspensionVerdict(job, this.deadSince.get(w) as number, this.look, now, deadlineMs));
      }
      return out;
    };
    let verdicts = decide();
    if ([...verdicts.values()].some(v => v.kind === 'ask')) {
      this.ask(ctx, now, deadlineMs);
      await Promise.race([this.asking, new Promise(r => setTimeout(r, SUSPENSION_SWEEP_WAIT_MS).unref())]);
      verdicts = decide();
    }
    for (const [w, v] of verdicts) {
      const job = jobOf.get(w) as string;
      if (v.kind === 'wait' || v.kind === 'ask') {
        later.push(w);
        continue;
      }
      if (v.kind === 'lost' && v.why)
        ctx.logger.warn({ worker: w, slurmJob: job }, `dead worker counted as lost: ${v.why}`);
      bury.set(w, v.kind === 'suspended' ? job : undefined);
      this.deadSince.delete(w);
    }
    const laterKey = later.join(' ');
    if (later.length > 0 && laterKey !== this.lastLater)
      ctx.logger.info({ workers: later }, 'dead workers left for a later sweep: squeue has not answered yet');
    this.lastLater = laterKey;
    return { bury, later };
  }

  private ask(ctx: JtmContext, now: number, timeoutMs: number): void {
    if (this.asking) return;
    const look: SlurmLook = { askedAt: now };
    this.look = look;
    this.asking = listActiveJobs([], timeoutMs).then(
      jobs => {
        look.answer = { jobs };
        if (this.lastFailure !== undefined) ctx.logger.info('squeue answers again');
        this.lastFailure = undefined;
      },
      (err: unknown) => {
        const e = toError(err);
        look.answer = { err: e };
        // Once per failure, not at every sweep while it lasts (a warning a second in a long outage).
        if (e.message !== this.lastFailure)
          ctx.logger.warn({ err: e }, 'squeue failed: dead workers in allocations wait');
        this.lastFailure = e.message;
      },
    );
    void this.asking.finally(() => {
      this.asking = undefined;
    });
  }
}

/** The Slurm job id of each worker ('' for one that ran outside an allocation). */
async function slurmJobsOf(ctx: JtmContext, workers: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  if (workers.length === 0) return out;
  const read = ctx.redis.pipeline();
  for (const w of workers) read.hget(ctx.keys.worker(w), 'slurm_job_id');
  ((await read.exec()) ?? []).forEach(([err, v], i) => {
    const job = String(v ?? '');
    out.set(workers[i] as string, !err && /^[1-9]\d*$/.test(job) ? job : '');
  });
  return out;
}
