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
import { loadConfig, type Config, type Env } from './config.js';
import { closeContext, openContext, type JtmContext } from './context.js';
import { InvalidInputError, OutputGapError } from './errors.js';
import { silentLogger, type Logger } from './logger.js';
import { listPools, type PoolInfo } from './pools/list-pools.js';
import { removePool, type RemovePoolResult } from './tasks/remove-pool.js';
import { killTask, type KillResult } from './tasks/kill-task.js';
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
import { submitTasks } from './tasks/submit-task.js';
import { streamTaskOutput } from './tasks/task-output.js';
import type { PoolSpec } from './pool-spec.js';

export type { Config, Env } from './config.js';
export {
  InvalidInputError,
  JtmError,
  OutputGapError,
  type OutputGap,
  PoolNotFoundError,
  RedisUnavailableError,
  SlurmError,
  TaskNotFoundError,
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
  /** Run with `/bin/bash -c` on a worker of the pool. */
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
  /** Base of relative paths and default working directory (default: `process.cwd()`). */
  cwd?: string;
}

export interface ConnectOptions {
  /**
   * The settings, as the CLI reads them from its environment (`REDIS_URL`, `JTM_PREFIX`, ... — every key of
   * `.env.example`). Default: this process's own environment (read by loadConfig).
   */
  env?: Env;
  /** A KEY=VALUE file, as `jtm --config FILE` (its keys yield to `env`). */
  configFile?: string;
  /** A pino logger; default: silent. */
  logger?: Logger;
}

/**
 * A connection to one JTM (one Redis and key prefix). Close it when done. Like the CLI's, the connection
 * fails fast: while Redis cannot be reached (JTM_CONNECT_TIMEOUT) calls reject with RedisUnavailableError
 * (code REDIS_UNAVAILABLE) rather than queue up; a long-running program connects again after one.
 */
export class JtmClient {
  private constructor(private readonly ctx: JtmContext) {}

  /** Connects to the JTM the settings name; rejects with RedisUnavailableError (code REDIS_UNAVAILABLE). */
  static async connect(opts: ConnectOptions = {}): Promise<JtmClient> {
    const config = loadConfig(opts.env, {}, opts.configFile);
    return new JtmClient(await openContext(config, opts.logger ?? silentLogger(), 'client'));
  }

  /** The resolved settings. */
  get config(): Config {
    return this.ctx.config;
  }

  /**
   * Queues one task or many (`jtm submit`, `jtm submit -f`). Every task is validated before anything is
   * written (InvalidInputError: nothing queued); resolves with the task ids, in order, once all are queued.
   */
  async submit(tasks: TaskInput | readonly TaskInput[], opts: SubmitOptions = {}): Promise<number[]> {
    const list = Array.isArray(tasks) ? (tasks as readonly TaskInput[]) : [tasks as TaskInput];
    if (list.length === 0) throw new InvalidInputError('no task given');
    const prepared = prepareTasks(list, { pool: opts.pool, cwd: opts.cwd ?? process.cwd() }, this.ctx.config);
    return submitTasks(this.ctx, prepared);
  }

  /** `jtm status`: name and code; an unknown id is `invalidtask` (-5). */
  async status(id: number): Promise<StatusAnswer> {
    return getTaskStatus(this.ctx, checkId(id));
  }

  /** `jtm status --json`: the whole record and its history; TaskNotFoundError for an unknown id. */
  async details(id: number): Promise<TaskDetails> {
    return getTaskDetails(this.ctx, checkId(id));
  }

  /**
   * `jtm isalive`: `yes` while ready/queued/pending/running, `no` once ended or unknown, `unknown` when
   * Redis stays unreachable for `JTM_ISALIVE_RETRY`.
   */
  async isAlive(id: number): Promise<Aliveness> {
    return checkAlive(async () => this.ctx, checkId(id), this.ctx.config.isaliveRetryMs);
  }

  /** `jtm kill`: ends a waiting task, or has its worker kill a running one (waits up to `waitMs`, 15 s). */
  async kill(id: number, opts: { waitMs?: number } = {}): Promise<KillResult> {
    return killTask(this.ctx, checkId(id), opts.waitMs ?? 15_000);
  }

  /**
   * `jtm logs`: the task's stdout so far as bytes, exactly as written: its stdout file where that is readable on
   * this host, else what the Redis copy holds, which is the output's end (the last JTM_OUTPUT_TAIL_BYTES while it
   * runs, JTM_OUTPUT_KEEP_BYTES once ended; what is missing is said by a warning through the logger only).
   */
  async logs(id: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    await streamTaskOutput(this.ctx, checkId(id), chunk => void chunks.push(chunk), false);
    return Buffer.concat(chunks);
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
   * each, in output order) say what is missing and where. A task started again (a lost worker) starts its output
   * over: the new run's bytes follow what was delivered of the earlier one.
   */
  async followLogs(id: number, onChunk: (chunk: Buffer) => void | Promise<void>): Promise<void> {
    const taskId = checkId(id);
    const gaps = await streamTaskOutput(this.ctx, taskId, onChunk, true);
    if (gaps.length > 0) throw new OutputGapError(taskId, gaps);
  }

  /** `jtm resource-log`: the task's CPU/memory samples, oldest first. */
  async resourceLog(id: number): Promise<ResourceLog> {
    return getResourceLog(this.ctx, checkId(id));
  }

  /** `jtm resource-log --csv`. */
  async resourceLogCsv(id: number): Promise<string> {
    return resourceLogCsv(await this.resourceLog(id));
  }

  /** `jtm pools --json`. */
  async pools(): Promise<PoolInfo[]> {
    return listPools(this.ctx);
  }

  /** `jtm remove-pool`: PoolNotFoundError for an unknown pool. */
  async removePool(name: string, opts: { force?: boolean; waitMs?: number } = {}): Promise<RemovePoolResult> {
    return removePool(this.ctx, name, { force: opts.force ?? false, waitMs: opts.waitMs ?? 15_000 });
  }

  /** Closes the Redis connection. */
  async close(): Promise<void> {
    return closeContext(this.ctx);
  }
}

/** Shorthand for `JtmClient.connect(opts)`. */
export function connect(opts: ConnectOptions = {}): Promise<JtmClient> {
  return JtmClient.connect(opts);
}

/** Methods are async, so that bad input rejects like every other error instead of throwing. */
function checkId(id: number): number {
  if (!Number.isSafeInteger(id) || id < 0) throw new InvalidInputError(`invalid task id ${String(id)}`);
  return id;
}
