import { randomBytes } from 'node:crypto';

import type { Config } from '../config.js';
import type { RedisClient } from '../redis/connection.js';
import type { Keys } from '../redis/keys.js';
import { runScript } from '../redis/run-script.js';
import {
  CREATE_TASK,
  CREATE_TASKS,
  FENCED_SET,
  NOTE_ON_RECORD,
  RECOVER_TASK,
  REQUEST_KILL,
  RUN_FIELDS,
  START_TASK,
  TRANSITION,
  TRANSITION_MANY,
} from '../redis/scripts.js';
import { TaskStatus } from '../task-status.js';
import { wallNow } from '../wall-clock.js';
import { ID_ROLLBACK_MARGIN, raiseIdCounter } from './id-counter.js';
import { jobDataFromRecord, type TaskJobData } from './run-spec.js';
import { decodeHistory, type TaskEvent } from './task-history.js';
import { parseTaskRecord, toHashPairs, type TaskRecord } from './task-record.js';

export type { TaskEvent } from './task-history.js';

export type StartOutcome =
  /** `spec`: what the worker needs to run it, read from the record by the same script. */
  | { kind: 'started'; attempt: number; spec: TaskJobData }
  | { kind: 'skip'; status: number }
  | { kind: 'busy' }
  /** Its submit has not completed (yet, or ever): not to be run now; the job is deferred. */
  | { kind: 'unsubmitted'; queuedAt: number }
  | { kind: 'missing' };

/**
 * One execution of a task: the worker running it and the run's random token (written by start-task).
 * Every write after the start names it, and Redis refuses the write once another execution owns the task.
 */
export interface Fence {
  workerId: string;
  runToken: string;
}

export type KillOutcome =
  | { kind: 'missing' }
  | { kind: 'final'; status: number }
  | { kind: 'ended'; previous: number }
  | { kind: 'signal-worker'; workerId: string }
  | { kind: 'worker-dead'; workerId: string };

export type RecoverOutcome =
  | { kind: 'recovered'; status: number }
  | { kind: 'not-running-there'; status: number }
  | { kind: 'worker-alive' }
  | { kind: 'missing' };

export type TransitionOutcome =
  | { done: true; previous: number }
  /** `fenced`: the status allowed it, but another execution (or none) owns the task now. */
  | { done: false; current: number | undefined; fenced?: boolean };

// What the request-kill and recover-task scripts' replies {code, value} mean, indexed by code; any other
// code ({-1}) is a missing record.
const KILL_REPLIES: readonly ((value: number | string | undefined) => KillOutcome)[] = [
  value => ({ kind: 'final', status: Number(value) }),
  value => ({ kind: 'ended', previous: Number(value) }),
  value => ({ kind: 'signal-worker', workerId: String(value) }),
  value => ({ kind: 'worker-dead', workerId: String(value) }),
];
const RECOVER_REPLIES: readonly ((value: number | undefined) => RecoverOutcome)[] = [
  value => ({ kind: 'not-running-there', status: Number(value) }),
  value => ({ kind: 'recovered', status: Number(value) }),
  () => ({ kind: 'worker-alive' }),
];

/**
 * Raises of the id counter within one createMany before it gives up: each doubles the last, so this reaches
 * 2^20 × ID_ROLLBACK_MARGIN ids past the first id found taken (no site keeps records that far apart).
 */
const MAX_ID_RAISES = 20;

export interface CreateManyOptions {
  /** The pool queues' job id prefix (tasks/job-data.ts): a new id's job must not exist either. */
  jobIdPrefix?: string;
  /** Told of each raise of the counter past ids found taken: `taken` (a counter value), the counter before, after. */
  onIdsTaken?: (raise: { taken: number; counter: number; raisedTo: number }) => void;
  /**
   * The call's token (its create-call key): a later call with the same token, within CREATE_CALL_TTL_MS, is
   * answered the ids of the first and writes nothing. A retried submit sends each chunk with the token of its
   * first try (submit-task.ts). Default: one of its own, random.
   */
  callToken?: string;
  /** The submit the records belong to: once its commit key exists (committed or taken back), nothing is written. */
  submitId?: string;
}

/** Reads and changes task records; every status change goes through a guarded Lua transition. */
export class TaskStore {
  constructor(
    readonly redis: RedisClient,
    readonly keys: Keys,
    readonly config: Config,
    /** The shard these keys are (shards.ts): new ids are counter × config.shards + shard. */
    readonly shard = 0,
  ) {}

  async create(fields: Partial<Record<keyof TaskRecord, unknown>>, now = wallNow()): Promise<number> {
    const id = await runScript<number>(
      this.redis,
      CREATE_TASK,
      [this.keys.nextTaskId, this.keys.activeTasks, this.keys.statsSubmitted, this.keys.idCounterRunId],
      [this.keys.taskBase, now, this.config.shards, this.shard, ...toHashPairs(fields)],
    );
    return Number(id);
  }

  /**
   * Creates many records (status queued) in one script run; their ids follow each other on the shard, in order.
   * An id whose record (or, given `opts.jobIdPrefix`, whose job in the task's pool queue) still exists is not
   * handed out: the id counter was lost alone (evicted, deleted) or went back while records were kept
   * (adversary 24 F7). The script then writes nothing; the counter is raised past the highest id found taken by
   * ID_ROLLBACK_MARGIN (as the manager raises a counter that went back: ids between may be taken too), further
   * at each new hit, and the chunk is written again. `opts.onIdsTaken` hears of each raise.
   */
  async createMany(
    list: readonly Partial<Record<keyof TaskRecord, unknown>>[],
    now = wallNow(),
    opts: CreateManyOptions = {},
  ): Promise<number[]> {
    if (list.length === 0) return [];
    // Fields every task of the call has with the same value (pool spec, cwd, submit id, …) go once.
    const pairsOf = list.map(f => toHashPairs(f));
    const shared = sharedPairs(pairsOf);
    const args: (string | number)[] = [
      this.keys.taskBase,
      now,
      this.config.shards,
      this.shard,
      list.length,
      `${this.keys.queuePrefix}:`,
      opts.jobIdPrefix ?? '',
      shared.size,
    ];
    for (const [k, v] of shared) args.push(k, v);
    for (const pairs of pairsOf) {
      const at = args.length;
      args.push(0);
      let own = 0;
      for (let i = 0; i < pairs.length; i += 2) {
        const k = pairs[i] as string;
        if (shared.has(k)) continue;
        args.push(k, pairs[i + 1] as string);
        own++;
      }
      args[at] = own;
    }
    // This call's own key: sent again by the client after a reset, or by a retried submit, the script answers as
    // it did (CREATE_TASKS).
    const keys = [
      this.keys.nextTaskId,
      this.keys.activeTasks,
      this.keys.statsSubmitted,
      this.keys.createCall(opts.callToken ?? randomBytes(8).toString('hex')),
      this.keys.idCounterRunId,
    ];
    if (opts.submitId !== undefined) keys.push(this.keys.submit(opts.submitId));
    for (let round = 0; ; round++) {
      const reply = await runScript<number | [number, number]>(this.redis, CREATE_TASKS, keys, args);
      if (!Array.isArray(reply)) {
        const first = Number(reply);
        return list.map((_, i) => first + i * this.config.shards);
      }
      if (Number(reply[0]) === -1)
        throw new Error(
          `submit ${opts.submitId} was committed or taken back: no more records are written for it`,
        );
      const taken = Number(reply[1]);
      if (round >= MAX_ID_RAISES)
        throw new Error(
          `the task id counter of shard ${this.shard} kept landing on ids in use (last ${taken}), raised ${round} times`,
        );
      // Doubled at each new hit within one call: ids kept from before the loss may reach far past the first margin.
      const target = taken + ID_ROLLBACK_MARGIN * 2 ** round;
      const before = await raiseIdCounter(this.redis, this.keys.nextTaskId, target);
      opts.onIdsTaken?.({ taken, counter: before, raisedTo: Math.max(before, target) });
    }
  }

  /** transition() for many tasks in one script run, without fields; returns how many were moved. */
  async transitionMany(
    ids: readonly number[],
    from: readonly number[],
    to: number,
    reason: string,
    now = wallNow(),
  ): Promise<number> {
    if (ids.length === 0) return 0;
    const moved = await runScript<number>(
      this.redis,
      TRANSITION_MANY,
      [this.keys.activeTasks],
      [...this.transitionArgs(from, to, reason, now), this.keys.statsBase, ...ids],
    );
    return Number(moved);
  }

  /** Moves `id` from one of `from` to `to`; fails (done: false) when the current status is not in `from`. */
  async transition(
    id: number,
    from: readonly number[],
    to: number,
    reason: string,
    fields: Partial<Record<keyof TaskRecord, unknown>> = {},
    now = wallNow(),
  ): Promise<TransitionOutcome> {
    return this.runTransition(id, from, to, reason, fields, undefined, now);
  }

  /**
   * Moves a running task to `to` only while `fence` (that worker, that execution) still owns it: how a
   * worker records an end or gives a task back. A stale execution's write changes nothing (fenced).
   */
  async transitionFenced(
    id: number,
    fence: Fence,
    to: number,
    reason: string,
    fields: Partial<Record<keyof TaskRecord, unknown>> = {},
    now = wallNow(),
  ): Promise<TransitionOutcome> {
    return this.runTransition(id, [TaskStatus.running], to, reason, fields, fence, now);
  }

  private async runTransition(
    id: number,
    from: readonly number[],
    to: number,
    reason: string,
    fields: Partial<Record<keyof TaskRecord, unknown>>,
    fence: Fence | undefined,
    now: number,
  ): Promise<TransitionOutcome> {
    const res = await runScript<number[]>(
      this.redis,
      TRANSITION,
      [this.keys.task(id), this.keys.activeTasks],
      [
        ...this.transitionArgs(from, to, reason, now),
        fence?.workerId ?? '',
        fence?.runToken ?? '',
        this.keys.statsBase,
        ...toHashPairs(fields),
      ],
    );
    if (res[0] === 1) return { done: true, previous: Number(res[1]) };
    if (res[0] === 2) return { done: false, current: Number(res[1]), fenced: true };
    return { done: false, current: res[0] === -1 ? undefined : Number(res[1]) };
  }

  /** ARGV[1..7] of transition and transition-many: what moves, to what, why, and the key bases of finalize. */
  private transitionArgs(
    from: readonly number[],
    to: number,
    reason: string,
    now: number,
  ): (string | number)[] {
    return [
      from.join(','),
      to,
      now,
      reason,
      this.config.taskRetentionMs,
      this.keys.taskBase,
      this.keys.workerBase,
    ];
  }

  /** Sets fields of a running task only while `fence` owns it; false when it no longer does. */
  async setFenced(
    id: number,
    fence: Fence,
    fields: Partial<Record<keyof TaskRecord, unknown>>,
  ): Promise<boolean> {
    const pairs = toHashPairs(fields);
    if (pairs.length === 0) return true;
    const res = await runScript<number>(
      this.redis,
      FENCED_SET,
      [this.keys.task(id)],
      [fence.workerId, fence.runToken, ...pairs],
    );
    return Number(res) === 1;
  }

  /**
   * Claims a task for one execution (`runToken`) of `workerId`. `jobToken` is the BullMQ lock token the job
   * was fetched with: the manager moves the job of a dead worker only while that very lock holds.
   */
  async start(
    id: number,
    workerId: string,
    host: string,
    runToken: string,
    jobToken = '',
    now = wallNow(),
  ): Promise<StartOutcome> {
    const res = await runScript<(number | string | null)[]>(
      this.redis,
      START_TASK,
      [this.keys.task(id), this.keys.activeTasks, this.keys.workerTasks(workerId)],
      [
        workerId,
        host,
        now,
        this.config.taskRetentionMs,
        this.keys.taskBase,
        this.keys.workerBase,
        runToken,
        jobToken,
        this.keys.submitBase,
        this.keys.statsBase,
      ],
    );
    switch (res[0]) {
      case 1:
        return { kind: 'started', attempt: Number(res[1]), spec: runSpec(id, res.slice(2)) };
      case 0:
        return { kind: 'skip', status: Number(res[1]) };
      case 2:
        return { kind: 'busy' };
      case 3:
        return { kind: 'unsubmitted', queuedAt: Number(res[1]) };
      default:
        return { kind: 'missing' };
    }
  }

  /**
   * `requestId`: one kill's own id, so that the same request sent again (its answer lost to a reset) is answered
   * as it was the first time, not as a task that had already ended.
   */
  async requestKill(id: number, now = wallNow(), requestId = ''): Promise<KillOutcome> {
    const res = await runScript<(number | string)[]>(
      this.redis,
      REQUEST_KILL,
      [this.keys.task(id), this.keys.activeTasks],
      [
        now,
        this.config.taskRetentionMs,
        this.keys.taskBase,
        this.keys.workerBase,
        this.keys.statsBase,
        requestId,
      ],
    );
    return KILL_REPLIES[Number(res[0])]?.(res[1]) ?? { kind: 'missing' };
  }

  /**
   * Ends the run of a task on a dead worker: re-queued (pending), lostconnection or, with a pending kill,
   * terminated, by the same losses rule as start(). Touches only a task still running on `workerId`, and
   * with `runToken` only that execution of it (the one the caller's decision was made on).
   */
  async recover(
    id: number,
    workerId: string,
    runToken = '',
    now = wallNow(),
    /** Why the worker is silent when that is a stop, not a loss (no retry spent): its allocation suspended. */
    stop = '',
  ): Promise<RecoverOutcome> {
    const res = await runScript<number[]>(
      this.redis,
      RECOVER_TASK,
      [this.keys.task(id), this.keys.activeTasks],
      [
        workerId,
        now,
        this.config.taskRetentionMs,
        this.keys.taskBase,
        this.keys.workerBase,
        runToken,
        this.keys.statsBase,
        stop,
      ],
    );
    return RECOVER_REPLIES[Number(res[0])]?.(res[1]) ?? { kind: 'missing' };
  }

  /**
   * Reports processes of a lost run of task `id` that a worker found and killed on `host`: their pids are
   * appended to `leftover_pids`, with an event. False when the record is gone (expired).
   */
  async reportLeftovers(
    id: number,
    pids: readonly number[],
    host: string,
    now = wallNow(),
  ): Promise<boolean> {
    const reason = `killed ${pids.length} leftover processes of a lost run on ${host}`;
    return this.note(id, 'leftover_pids', pids.join(','), reason, true, now);
  }

  /**
   * Notes on task `id` that JTM could not write the rc of the task it ended (rc-file.ts): `rc_error`, with an
   * event. False when the record is gone (expired).
   */
  async noteRcNotWritten(id: number, error: string, now = wallNow()): Promise<boolean> {
    return this.note(id, 'rc_error', error, `rc not written: ${error}`, false, now);
  }

  /** Sets (or appends to) one field of task `id` and says why in its history, its status untouched. */
  private async note(
    id: number,
    field: keyof TaskRecord,
    value: string,
    reason: string,
    append: boolean,
    now: number,
  ): Promise<boolean> {
    const res = await runScript<number>(
      this.redis,
      NOTE_ON_RECORD,
      [this.keys.task(id)],
      [now, field, value, reason, append ? '1' : '0'],
    );
    return Number(res) === 1;
  }

  async get(id: number): Promise<TaskRecord | undefined> {
    return parseTaskRecord(await this.redis.hgetall(this.keys.task(id)));
  }

  /** The status code alone: one HGET, what isalive and status need. */
  async status(id: number): Promise<number | undefined> {
    const v = await this.redis.hget(this.keys.task(id), 'status');
    return v === null ? undefined : Number(v);
  }

  /** The history of a task, oldest first (empty for an unknown id). */
  async events(id: number): Promise<TaskEvent[]> {
    const [values, legacy] = await Promise.all([
      this.redis.hmget(this.keys.task(id), 'history', 'queued_at', 'worker_id', 'host', 'reason'),
      this.legacyEvents(id),
    ]);
    const [history, queued_at, worker_id, host, reason] = values.map(v => v ?? undefined);
    return [...legacy, ...decodeHistory({ history, queued_at, worker_id, host, reason })];
  }

  /** The record and its history in one round trip; undefined for an unknown id. */
  async details(id: number): Promise<{ record: TaskRecord; events: TaskEvent[] } | undefined> {
    const [hash, legacy] = await Promise.all([this.redis.hgetall(this.keys.task(id)), this.legacyEvents(id)]);
    const record = parseTaskRecord(hash);
    return record && { record, events: [...legacy, ...decodeHistory(hash)] };
  }

  /**
   * The history list of a record written before the history became a field of the record (a task in flight
   * across the upgrade): its older events, read before the field's.
   */
  private async legacyEvents(id: number): Promise<TaskEvent[]> {
    const raw = await this.redis.lrange(this.keys.taskEvents(id), 0, -1);
    return raw.map(r => JSON.parse(r) as TaskEvent);
  }
}

/** The run spec start-task returns (RUN_FIELDS order; Redis nil for an unset field), parsed as the record is. */
function runSpec(id: number, values: readonly (number | string | null)[]): TaskJobData {
  const hash: Record<string, string> = { id: String(id) };
  RUN_FIELDS.forEach((f, i) => {
    const v = values[i];
    if (v !== null && v !== undefined) hash[f] = String(v);
  });
  return jobDataFromRecord(parseTaskRecord(hash) as TaskRecord);
}

/** The field, value pairs every one of `pairsOf` holds with the same value (a Map: field → value). */
function sharedPairs(pairsOf: readonly string[][]): Map<string, string> {
  const shared = new Map<string, string>();
  const first = pairsOf[0] ?? [];
  for (let i = 0; i < first.length; i += 2) shared.set(first[i] as string, first[i + 1] as string);
  for (let t = 1; t < pairsOf.length && shared.size > 0; t++) {
    const pairs = pairsOf[t] as string[];
    // Most tasks of a call share every field the first one does: counted first, a set only when not (a set per
    // task cost a 10,000-task `jtm submit -f` ≈ 20 ms of sampled CPU, with its garbage).
    let same = 0;
    for (let i = 0; i < pairs.length; i += 2) if (shared.get(pairs[i] as string) === pairs[i + 1]) same++;
    if (same === shared.size) continue;
    const seen = new Set<string>();
    for (let i = 0; i < pairs.length; i += 2) {
      const k = pairs[i] as string;
      if (shared.get(k) === pairs[i + 1]) seen.add(k);
    }
    for (const k of shared.keys()) if (!seen.has(k)) shared.delete(k);
  }
  return shared;
}
