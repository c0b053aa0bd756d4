/**
 * JTM's programmatic API: what `jtm submit/status/isalive/kill/logs/resource-log/pools/remove-pool` do, for
 * Node programs. Each method calls the same function of src/ as the command (nothing is implemented twice),
 * with the same validation, statuses and errors (JtmError subclasses with a stable `code`).
 *
 * ```ts
 * import { connect } from 'jtm';
 * const jtm = await connect({ env: { REDIS_URL: 'redis://127.0.0.1:6379' } });
 * const [id] = await jtm.submit({ command: 'echo hello', pool: { name: 'small' } });
 * console.log((await jtm.status(id)).status); // pending, running, success, ...
 * await jtm.close();
 * ```
 */
import { configFileOf, loadConfig, type Config, type Env } from './config.js';
import { apiError, ClientSession } from './client-session.js';
import { withContext, type JtmContext } from './context.js';
import { InvalidInputError } from './errors.js';
import { refuseNonRegularFile } from './input-file.js';
import { silentLogger, type Logger } from './logger.js';
import { listPools, type PoolInfo } from './pools/list-pools.js';
import { removePool, type RemovePoolResult } from './tasks/remove-pool.js';
import { killTaskRetrying, type KillResult } from './tasks/kill-task.js';
import { prepareTasks } from './tasks/prepare-tasks.js';
import {
  checkAlive,
  getTaskDetails,
  getTaskStatus,
  type Aliveness,
  type StatusAnswer,
  type TaskDetails,
} from './tasks/query-task.js';
import { getResourceLog, resourceLogCsv, type ResourceLog } from './tasks/resource-log.js';
import { submitTasksRetrying } from './tasks/submit-task.js';
import { followFailure, streamTaskOutput } from './tasks/task-output.js';
import type { PoolSpec } from './pool-spec.js';

export type { Config, Env } from './config.js';
export {
  ClientClosedError,
  ClusterPrefixError,
  InvalidInputError,
  JtmError,
  OutputGapError,
  type OutputGap,
  OutputNotFollowedError,
  OutputRestartedError,
  type OutputRestart,
  PoolNotFoundError,
  RedisAuthError,
  RedisRefusedError,
  RedisTlsError,
  RedisUnavailableError,
  RedisUrlError,
  ShardCountMismatchError,
  SlurmError,
  SubmitIncompleteError,
  SubmitPartlyCommittedError,
  SubmitUnsettledError,
  KillUnsettledError,
  TaskNotFoundError,
  TaskRecordLostError,
  UnexpectedError,
} from './errors.js';
export type { Logger } from './logger.js';
export type { PoolInfo, SlurmJobEntry } from './pools/list-pools.js';
export type { RemovePoolResult } from './tasks/remove-pool.js';
export type { KillResult } from './tasks/kill-task.js';
export type { Aliveness, StatusAnswer, TaskDetails } from './tasks/query-task.js';
export type { ResourceLog } from './tasks/resource-log.js';
export { isActive, isFinal, statusName, TaskStatus, type TaskStatusName } from './tasks/status.js';
export type { PoolSpec } from './pool-spec.js';
export type { TaskRecord } from './store/task-record.js';
export type { TaskEvent } from './store/task-store.js';
export type { ResourceSample } from './tasks/resource-format.js';

/**
 * One task, in the task-file format of `jtm submit -f` (docs: README, "Submitting tasks"). Relative paths
 * are relative to `SubmitOptions.cwd`.
 */
export interface TaskInput {
  /** Run with `/bin/bash -c` on a worker of the pool; well-formed text (no lone surrogate, no NUL). */
  command: string;
  /** The pool; its name may instead come from `SubmitOptions.pool`. `time` makes it a Slurm (dynamic) pool. */
  pool?: Partial<Omit<PoolSpec, 'name'>> & { name?: string };
  /** Working directory of the task (default: `SubmitOptions.cwd`). */
  output_dir?: string;
  output_files?: string;
  stdout?: string;
  stderr?: string;
  /** Time limit, e.g. `90s`, `10m`, `01:00:00`. */
  timeout?: string;
  /** Memory limit of the task, e.g. `4G` (as `submit -m`); over it the task ends `outofresource` (-3). */
  mem_limit?: string;
  /** Cromwell's rc file, written by JTM if it ends the task itself. */
  rc_file?: string;
  allow_empty_outputs?: boolean;
  cromwell_job_id?: string;
}

export interface SubmitOptions {
  /** Pool name for tasks whose `pool.name` is not set (as `-p`). */
  pool?: string;
  /**
   * Base of relative paths and default working directory (default: `process.cwd()`); a relative one is taken
   * from `process.cwd()` at the call, and stored absolute. No NUL, no lone surrogate (INVALID_INPUT).
   */
  cwd?: string;
}

export interface ConnectOptions {
  /**
   * The settings, as the CLI reads them from its environment (`REDIS_URL`, `JTM_PREFIX`, ... — every key of
   * `.env.example`). Default: this process's own environment (read by loadConfig).
   */
  env?: Env;
  /**
   * A KEY=VALUE file, as `jtm --config FILE` (its keys yield to `env`); a regular file (a pipe would block
   * this process while it waits for a writer, so it is refused: INVALID_INPUT). Read once per process.
   */
  configFile?: string;
  /** A pino logger; default: silent. */
  logger?: Logger;
}

/**
 * A connection to one JTM (one Redis and key prefix). Close it when done. Every rejection is a JtmError subclass
 * with a stable `code` (README, "From Node"). Like the CLI's, the connection fails fast and never hangs:
 * - a call that cannot reach Redis — refused, down, or connected but silent (stopped, a hung host, a partition)
 *   — rejects with RedisUnavailableError (REDIS_UNAVAILABLE) within about JTM_CONNECT_TIMEOUT (at most twice
 *   it when this process is starved of CPU) instead of queueing or waiting; the next call connects again;
 * - `isAlive` answers `unknown` when Redis stays unreachable for JTM_ISALIVE_RETRY, `kill` and `submit` try
 *   again for JTM_KILL_RETRY / JTM_SUBMIT_RETRY (submit only while nothing of the failed try can run), as the
 *   commands do; `followLogs` that loses Redis while following connects again for JTM_FOLLOW_RETRY.
 */
export class JtmClient {
  private constructor(private readonly session: ClientSession) {}

  /**
   * Connects to the JTM the settings name (JTM_CONNECT_TIMEOUT counted from this call); rejects with
   * RedisUnavailableError, RedisAuthError, RedisTlsError, RedisUrlError, ShardCountMismatchError,
   * ClusterPrefixError, or InvalidInputError for settings that are not valid.
   */
  static async connect(opts: ConnectOptions = {}): Promise<JtmClient> {
    if (typeof opts !== 'object' || opts === null) {
      throw new InvalidInputError('connect() takes an options object ({ env, configFile, logger })');
    }
    if (opts.env !== undefined && (typeof opts.env !== 'object' || opts.env === null)) {
      throw new InvalidInputError('env must be an object of settings (KEY: value), or left out');
    }
    try {
      const file = configFileOf(opts.env, opts.configFile);
      if (file) refuseNonRegularFile(file, 'config file');
      const config = loadConfig(opts.env, {}, opts.configFile);
      const logger = opts.logger ?? silentLogger();
      return new JtmClient(new ClientSession(config, logger, await ClientSession.open(config, logger)));
    } catch (err) {
      throw apiError(err, 'REDIS_URL');
    }
  }

  /** The resolved settings. */
  get config(): Config {
    return this.session.config;
  }

  /**
   * Queues one task or many (`jtm submit`, `jtm submit -f`). Every task is validated before anything is
   * written (InvalidInputError, naming `tasks[i]` in an array: nothing queued); resolves with the task ids, in
   * order, once all are queued. A relative `cwd` is taken from `process.cwd()`.
   */
  async submit(tasks: TaskInput | readonly TaskInput[], opts: SubmitOptions = {}): Promise<number[]> {
    return this.session.run(async () => {
      const many = Array.isArray(tasks);
      const list = many ? (tasks as readonly TaskInput[]) : [tasks as TaskInput];
      if (list.length === 0) throw new InvalidInputError('no task given');
      const prepared = prepareTasks(
        list,
        { pool: opts.pool, cwd: opts.cwd ?? process.cwd() },
        this.config,
        many ? i => `tasks[${i}]` : undefined,
      );
      return submitTasksRetrying(this.session, prepared, this.config.submitRetryMs);
    });
  }

  /** `jtm status`: name and code; an unknown id is `invalidtask` (-5). */
  async status(id: number): Promise<StatusAnswer> {
    return this.call(id, (ctx, tid) => getTaskStatus(ctx, tid));
  }

  /** `jtm status --json`: the whole record and its history; TaskNotFoundError for an unknown id. */
  async details(id: number): Promise<TaskDetails> {
    return this.call(id, (ctx, tid) => getTaskDetails(ctx, tid));
  }

  /**
   * `jtm isalive`: `yes` while ready/queued/pending/running, `no` once ended or unknown, `unknown` when
   * Redis stays unreachable (or silent) for `JTM_ISALIVE_RETRY`.
   */
  async isAlive(id: number): Promise<Aliveness> {
    return this.session.run(async () => checkAlive(this.session, checkId(id), this.config.isaliveRetryMs));
  }

  /**
   * `jtm kill`: ends a waiting task, or has its worker kill a running one (waits up to `waitMs`, 15 s); tried
   * again while Redis is unreachable, for JTM_KILL_RETRY.
   */
  async kill(id: number, opts: { waitMs?: number } = {}): Promise<KillResult> {
    return this.session.run(async () =>
      killTaskRetrying(this.session, checkId(id), checkWait(opts.waitMs), this.config.killRetryMs),
    );
  }

  /**
   * `jtm logs`: the task's stdout so far as bytes, exactly as written: its stdout file where that is readable on
   * this host, else what the Redis copy holds, which is the output's end (the last JTM_OUTPUT_TAIL_BYTES while it
   * runs, JTM_OUTPUT_KEEP_BYTES once ended; what is missing is said by a warning through the logger only).
   * The whole output is gathered in memory, as one Buffer (at most buffer.constants.MAX_LENGTH bytes): for a large
   * one, use followLogs, which hands it over in chunks.
   */
  async logs(id: number): Promise<Buffer> {
    return this.call(id, async (ctx, tid) => {
      const chunks: Buffer[] = [];
      await streamTaskOutput(ctx, tid, chunk => void chunks.push(chunk), false);
      return Buffer.concat(chunks);
    });
  }

  /**
   * `jtm logs --follow`: calls `onChunk` with the task's stdout (bytes, in order, from its first byte) as it is
   * written, awaiting each call, and resolves once the task has ended and its last byte was delivered.
   *
   * Every byte the task wrote is delivered, with no gap, whenever it can be had: the Redis copy holds only the
   * output's end (`JTM_OUTPUT_TAIL_BYTES` while it runs, `JTM_OUTPUT_KEEP_BYTES` once ended), and what it no
   * longer holds (the start of a long output, the middle of a task that ended between two polls, what went by
   * while a slow `onChunk` held the follower back) is read from the task's stdout file when that file is readable
   * on this host and still holds this run's output. When some bytes are in neither place (the file is on another
   * host, another user's, removed or rewritten), the rest is still delivered in order, and the promise then
   * rejects with an {@link OutputGapError} (code `OUTPUT_GAP`): `missedBytes` and `gaps` (`{ offset, bytes }`
   * each, in output order) say what is missing and where. A task started again (a lost worker), or whose stdout
   * file was truncated or rewritten while it ran, starts its output over: the new bytes follow what was delivered
   * before, and the promise then rejects with an {@link OutputRestartedError} (code `OUTPUT_RESTARTED`, `restarts`:
   * `{ offset, cause }` each, `offset` the bytes delivered before). A task whose stdout went to a FIFO or a device
   * (not /dev/null) rejects with an {@link OutputNotFollowedError} (code `OUTPUT_NOT_FOLLOWED`) once it has ended:
   * that output is neither kept nor followed. A record that vanishes meanwhile
   * (Redis flushed or lost its data) is no end: it rejects with a {@link TaskRecordLostError} (code
   * `TASK_RECORD_LOST`). Redis lost once following (a reset, a restart, silent for JTM_CONNECT_TIMEOUT) is
   * ridden out for JTM_FOLLOW_RETRY: it connects again and goes on at the byte where it stopped, each byte
   * delivered once (a warning through the logger when Redis is lost, one when it answers again); longer, it
   * rejects with a RedisUnavailableError. Rejects with what `onChunk` throws, as it threw it; with a
   * ClientClosedError if close() is called meanwhile.
   */
  async followLogs(id: number, onChunk: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    const thrown = new Set<unknown>();
    const write = async (chunk: Buffer): Promise<void> => {
      try {
        await onChunk(chunk);
      } catch (err) {
        thrown.add(err);
        throw err;
      }
    };
    const tid = checkId(id);
    const session = this.session;
    // Redis lost while following: connected again, for JTM_FOLLOW_RETRY, the output resumed where it stopped.
    const from = { source: session, logger: session.logger, retryMs: session.config.followRetryMs };
    const report = await session.run(
      async () => streamTaskOutput(from, tid, write, true, session.signal),
      err => thrown.has(err),
    );
    const failure = followFailure(tid, report);
    if (failure) throw failure;
  }

  /** `jtm resource-log`: the task's CPU/memory samples, oldest first. */
  async resourceLog(id: number): Promise<ResourceLog> {
    return this.call(id, (ctx, tid) => getResourceLog(ctx, tid));
  }

  /** `jtm resource-log --csv`. */
  async resourceLogCsv(id: number): Promise<string> {
    return resourceLogCsv(await this.resourceLog(id));
  }

  /** `jtm pools --json`. */
  async pools(): Promise<PoolInfo[]> {
    return this.session.run(() => withContext(this.session, ctx => listPools(ctx)));
  }

  /** `jtm remove-pool`: PoolNotFoundError for an unknown pool. */
  async removePool(name: string, opts: { force?: boolean; waitMs?: number } = {}): Promise<RemovePoolResult> {
    return this.session.run(() =>
      withContext(this.session, ctx =>
        removePool(ctx, name, { force: opts.force ?? false, waitMs: checkWait(opts.waitMs) }),
      ),
    );
  }

  /**
   * Closes the Redis connection once the calls in flight have finished (a submit is never left half-written;
   * a followLogs stops with ClientClosedError). Calls made after it reject with ClientClosedError
   * (CLIENT_CLOSED). Prints nothing. Closing twice is fine.
   */
  async close(): Promise<void> {
    return this.session.close();
  }

  /** A call on one task id: the id checked, then `fn` on the context (reconnected after a failure). */
  private call<T>(id: number, fn: (ctx: JtmContext, id: number) => Promise<T>): Promise<T> {
    return this.session.run(async () => {
      const tid = checkId(id);
      return withContext(this.session, ctx => fn(ctx, tid));
    });
  }
}

/** Shorthand for `JtmClient.connect(opts)`. */
export function connect(opts: ConnectOptions = {}): Promise<JtmClient> {
  return JtmClient.connect(opts);
}

/**
 * Task ids are positive integers, as `-tid` takes them (0 was `invalidtask` here and refused by the CLI:
 * adversary 22 L1). Methods are async, so that bad input rejects like every other error instead of throwing.
 */
function checkId(id: number): number {
  if (!Number.isSafeInteger(id) || id < 1) {
    const shown =
      typeof id === 'string' ? JSON.stringify(id) : typeof id === 'bigint' ? `${id}n` : String(id);
    throw new InvalidInputError(`invalid task id ${shown}: expected a positive integer`);
  }
  return id;
}

/** A `waitMs`: a number of milliseconds from 0 (a string or NaN waited the whole default: adversary 22 L5). */
function checkWait(waitMs: number | undefined): number {
  if (waitMs === undefined) return 15_000;
  if (typeof waitMs !== 'number' || !Number.isFinite(waitMs) || waitMs < 0) {
    throw new InvalidInputError(
      `waitMs must be a number of milliseconds from 0, got ${JSON.stringify(waitMs)}`,
    );
  }
  return waitMs;
}
