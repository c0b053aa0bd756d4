import type { JtmContext } from '../context.js';
import { InvalidInputError } from '../errors.js';
import { isOutageRefusal, isOutOfMemory, repliesOrThrow } from '../redis/replies.js';
import { observeRedisClock, wallClockOffsetMs, wallNow } from '../wall-clock.js';
import { monotonicMs } from './monotonic.js';
import type { WorkerOptions } from './worker-options.js';

export type WorkerState = 'running' | 'draining' | 'stopping';

/**
 * Writes the worker's heartbeat: its record (`worker:<id>`), its alive key whose TTL is
 * `missedBeats × interval` (absent = dead), and its score in the `workers` index (the manager finds
 * stale workers with one range query).
 */
export class Heartbeat {
  readonly startedAt = Date.now();
  /**
   * Time (the node's monotonic clock, monotonic.ts) before which the alive key surely still exists in Redis: the
   * send time of the last beat that succeeded plus the TTL (Redis set the TTL no earlier than the send, so it
   * expires no earlier than this).
   */
  leaseUntil = 0;
  /**
   * How many times the lease has begun: a beat that succeeded after the lease may have lapsed (sent at or past
   * `leaseUntil`) starts a new one. A task claimed under an earlier lease may have been taken over by another
   * worker in the gap, even though the lease holds again now. A count, not a time: a beat and the claim after
   * it often fall in the same millisecond (a local round trip takes less), and a time could not tell them
   * apart (the task was then given back at once, counted as a lease loss, and with no retries left ended
   * lostconnection).
   */
  leaseEpoch = 0;
  /**
   * When Redis last answered one of the heartbeat's commands, in time or late, with a result or a refusal
   * (monotonic clock; 0: never). A Redis that answers slowly is not a silent one (run-fencing.ts). A refusal of a
   * Redis that takes no writes for a while (isTransientRefusal: a BUSY script, MISCONF, READONLY, LOADING) is no
   * answer: such a Redis is out for every worker, as a silent one is, and a run it fenced is given back uncounted
   * (adversary 24 F1, F6: charged as a lease loss, or a worker loss, before). So is a refusal of the worker's
   * credentials (WRONGPASS, NOAUTH: a password rotated under it, a user disabled): the worker kept asking, and
   * could not be heard (adversary 24 F2: the refusals of the reconnects' AUTH read as answers, a lease loss).
   */
  lastReplyAt = 0;
  /**
   * The last beat was refused by a Redis that takes no writes for now, or refuses the worker's credentials: its
   * reads (TIME) are no answer either.
   */
  private refusing = false;
  /**
   * Why the worker takes no task for now (its log dir's disk full, the node's memory low), set by its admission
   * checks: a `running` worker is published `paused`, with the reason, so that check-worker and pools do not count
   * it as taking tasks (adversary 36 M3: counted as live slots while every task stayed pending).
   */
  paused: { kind: string; why: string } | undefined;

  constructor(
    private readonly ctx: JtmContext,
    private readonly opts: WorkerOptions,
    private readonly host: string,
    /** The clock of the lease (a test freezes it). */
    private readonly clock: () => number = monotonicMs,
  ) {}

  /** When the beat that last renewed the lease was sent (monotonic clock); 0 before the first. */
  get lastRenewalSent(): number {
    return this.leaseUntil === 0 ? 0 : this.leaseUntil - this.ttlMs;
  }

  get ttlMs(): number {
    return this.ctx.config.heartbeatIntervalMs * this.ctx.config.missedBeats;
  }

  /**
   * How long before `leaseUntil` a worker whose beats fail must stop its runs, and the kill grace they get:
   * the kill must be over before the lease can expire on the Redis side and another worker take over.
   */
  get fencing(): { marginMs: number; graceMs: number } {
    const interval = this.ctx.config.heartbeatIntervalMs;
    const ttl = this.ttlMs;
    const graceMs = Math.min(this.ctx.config.killGraceMs, ttl / 4, interval / 2);
    // The kill grace, plus room for the check's own period and a loaded host; not a whole beat more, so that
    // one late beat (a busy event loop, a slow Redis) does not stop every task.
    return { marginMs: Math.min(ttl / 2, graceMs + Math.max(interval / 2, 250)), graceMs };
  }

  /**
   * The time (monotonic clock) after which a task claimed under lease `claimEpoch` (`leaseEpoch` when the claim was sent) must
   * not start: the lease's end less the fencing margin, or 0 (already past) when the lease broke after the claim.
   */
  startDeadline(claimEpoch: number): number {
    return this.leaseEpoch === claimEpoch ? this.leaseUntil - this.fencing.marginMs : 0;
  }

  /** Whether the lease is about to lapse (or has): the runs must be stopped now. */
  mustFence(now = this.clock()): boolean {
    return now >= this.leaseUntil - this.fencing.marginMs;
  }

  /**
   * The first beat, which also takes the worker id: an id a live worker holds (its alive key exists) is
   * refused. Two workers started with the same --worker_id were both accepted, each renewing the other's lease
   * and overwriting its record (one could die unseen).
   */
  async register(state: WorkerState, stopped: () => boolean): Promise<void> {
    const { keys } = this.ctx;
    const id = this.opts.workerId;
    const taken = await this.ctx.redis.set(keys.workerAlive(id), String(Date.now()), 'PX', this.ttlMs, 'NX');
    if (taken === null) {
      const [host, pid] = await this.ctx.redis.hmget(keys.worker(id), 'host', 'pid');
      throw new InvalidInputError(
        `worker id ${id} is in use by a live worker (pid ${pid ?? '?'} on ${host ?? '?'}): give another --worker_id, or start this one once that worker has stopped (a worker killed without a stop holds it until its lease lapses, ${Math.ceil(this.ttlMs / 1000)} s after its last beat)`,
      );
    }
    // A stop that came meanwhile has sent its removal of the alive key behind the SET: a beat now would
    // write it again after that, and leave a live-looking worker behind.
    if (stopped()) return;
    // The first task's start is stamped after this: the clock is read before the worker takes one, a few times
    // if a reading's round trip is too slow to tell (dozens of workers of a new allocation starting at once), so
    // that a task's start and end are not stamped on two clocks.
    for (let i = 0; i < 3 && !(await this.readRedisClock()); i++) await new Promise(r => setTimeout(r, 50));
    await this.beat([], state);
  }

  /** `busyPeak`: the most tasks it ran at once since the last beat (at least `running`'s count). */
  async beat(
    running: readonly number[],
    state: WorkerState,
    busyPeak = running.length,
    now = wallNow(),
  ): Promise<void> {
    const sent = this.clock();
    void this.readRedisClock();
    const { keys } = this.ctx;
    const id = this.opts.workerId;
    const multi = this.ctx.redis.multi();
    multi.hset(keys.worker(id), {
      id,
      pool: this.opts.pool,
      host: this.host,
      pid: process.pid,
      slots: this.opts.slots,
      running: running.join(','),
      busy_peak: Math.max(busyPeak, running.length),
      state: state === 'running' && this.paused ? 'paused' : state,
      paused: this.paused?.kind ?? '',
      paused_why: this.paused?.why ?? '',
      // On the clock the beat is stamped with (wall-clock.ts), known only once Redis's clock has been read.
      started_at: this.startedAt + wallClockOffsetMs(),
      last_beat: now,
      slurm_job_id: this.opts.slurmJobId,
      end_of_life: this.opts.endOfLife === undefined ? '' : this.opts.endOfLife + wallClockOffsetMs(),
      worker_type: this.opts.workerType,
    });
    // The record outlives the worker for a day, for post-mortems; liveness is the alive key alone.
    multi.pexpire(keys.worker(id), 86_400_000);
    multi.set(keys.workerAlive(id), String(now), 'PX', this.ttlMs);
    multi.zadd(keys.workers, now, id);
    let answered = false;
    // The TIME sent just before this beat may be answered by a Redis that refuses the beat (MISCONF, READONLY
    // take reads): not an answer then.
    const replyBefore = this.lastReplyAt;
    try {
      const replies = await multi.exec();
      answered = true;
      repliesOrThrow(replies, 'heartbeat transaction');
      this.refusing = false;
      this.lastReplyAt = this.clock();
    } catch (err) {
      // A refusal for good (NOPERM, …) is an answer too; a closed connection, a Redis refusing writes for now, or one
      // refusing the worker's credentials, is not.
      this.refusing = isOutageRefusal(err);
      if (this.refusing) this.lastReplyAt = replyBefore;
      else if (answered || (err instanceof Error && err.name === 'ReplyError'))
        this.lastReplyAt = this.clock();
      // A full Redis (OOM under noeviction) refuses the beat's HSET, SET and ZADD, and the worker stopped every
      // running task before its lease could lapse, though no other worker could take a task over while Redis
      // takes no writes (adversary 13 E4: hours of work re-run for a full Redis). PEXPIRE of the alive key is not
      // refused for memory: the lease is kept by it alone (liveness is the alive key), and the beat still fails.
      if (!isOutOfMemory(err) || (await this.ctx.redis.pexpire(keys.workerAlive(id), this.ttlMs)) !== 1)
        throw err;
      this.renewed(sent);
      throw new Error(
        `${(err as Error).message.split('\n')[0]}: Redis is full; the lease is kept (PEXPIRE of the alive key), the running tasks go on, the worker takes no new task`,
      );
    }
    this.renewed(sent);
  }

  /**
   * Redis's clock beside each beat (wall-clock.ts: a node whose clock is off stamps records with Redis's time).
   * A command of its own, not in the beat's transaction: one refused (an ACL user without TIME) fails nothing.
   * False when the round trip was too slow to tell (worth another try), else true.
   */
  private async readRedisClock(): Promise<boolean> {
    try {
      const sent = Date.now();
      const [sec, usec] = await this.ctx.redis.time();
      if (!this.refusing) this.lastReplyAt = this.clock();
      const before = wallClockOffsetMs();
      const after = observeRedisClock(Number(sec) * 1000 + Number(usec) / 1000, sent, Date.now());
      if (after === undefined) return false;
      if (after !== before)
        this.ctx.logger.warn(
          { offsetMs: after },
          after === 0
            ? "the node's clock agrees with Redis's again: records are stamped with it"
            : `the node's clock is ${Math.abs(after)} ms ${after > 0 ? 'behind' : 'ahead of'} Redis's: records are stamped with Redis's time`,
        );
      return true;
    } catch {
      // No reading this time (refused, or Redis gone): the offset stays as it was; trying again now tells nothing.
      return true;
    }
  }

  /** A beat sent at `sent` (monotonic) renewed the alive key's TTL. */
  private renewed(sent: number): void {
    if (sent >= this.leaseUntil) this.leaseEpoch++;
    this.leaseUntil = Math.max(this.leaseUntil, sent + this.ttlMs);
  }

  /** A clean exit: the worker is gone at once, not after its TTL. */
  async remove(): Promise<void> {
    const { keys } = this.ctx;
    const id = this.opts.workerId;
    await this.ctx.redis
      .multi()
      .del(keys.workerAlive(id))
      .zrem(keys.workers, id)
      .hset(keys.worker(id), 'state', 'exited', 'running', '')
      .exec();
  }
}
