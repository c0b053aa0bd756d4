import type { PoolSpec } from '../pool-spec.js';
import { statusName, type TaskStatusName } from '../task-status.js';

/** The authoritative task record, as stored in `task:<id>` and printed by `status --json`. */
export interface TaskRecord {
  id: number;
  status: number;
  status_name: TaskStatusName;
  command: string;
  pool: string;
  pool_spec?: PoolSpec;
  cwd?: string;
  stdout?: string;
  stderr?: string;
  output_files?: string;
  allow_empty_outputs?: boolean;
  timeout_ms?: number;
  /** Memory limit the task asked for (`mem_limit`, `--mem-limit`), `-m` syntax normalised. */
  mem_limit?: string;
  rc_file?: string;
  /** Why JTM could not write the rc of a task it ended (rc-file.ts): Cromwell then waits for check-alive. */
  rc_error?: string;
  cromwell_job_id?: string;
  exit_code?: number;
  reason?: string;
  worker_id?: string;
  host?: string;
  pid?: number;
  /** Executions started (a re-queue after a graceful stop included). */
  attempts: number;
  /** Executions lost with their worker: what retries are spent on (a graceful stop is not a loss). */
  losses?: number;
  /** Re-queues because its allocation was suspended that spent no retry (recover-task, MAX_SUSPEND_STOPS). */
  suspend_stops?: number;
  /**
   * Runs given back because their worker could not renew its lease (self-fencing): no retry spent, but more than
   * max_retries + 1 of them end the task lostconnection (a worker whose beats are always late would loop).
   */
  lease_losses?: number;
  /**
   * Runs given back because Redis itself was silent while their worker kept asking (run-fencing.ts): not counted
   * in lease_losses, but bounded too (lease-losses.ts REDIS_SILENCE_LIMIT).
   */
  redis_silences?: number;
  /**
   * Runs given back by self-fencing before their command started (the lease lapsed between the claim and the
   * start): nothing ran, so not counted in lease_losses or redis_silences; bounded apart, higher
   * (lease-losses.ts UNSTARTED_GIVEBACK_LIMIT).
   */
  unstarted_givebacks?: number;
  /**
   * Pty hosts that died under the task's runs (lease-losses.ts): from the first, the task runs in a pty host
   * of its own, where a host's death harms no other task and is charged to it alone.
   */
  host_deaths?: number;
  /**
   * Runs given back because their worker was stopped by a signal while they ran, in a row (start-worker.ts
   * STOP_GIVEBACK_LIMIT): a task that signals its own worker stopped every worker of its pool in turn.
   */
  stop_givebacks?: number;
  max_retries: number;
  /** Random token of the execution that owns the task while it runs (the fence of every later write). */
  run_token?: string;
  /** BullMQ lock token the owning execution fetched its job with. */
  job_token?: string;
  /** Id of the submit that wrote the record (its commit key makes the task startable). */
  submit_id?: string;
  queued_at?: number;
  started_at?: number;
  ended_at?: number;
  peak_rss_mb?: number;
  cpu_time_s?: number;
  /** How the worker measured it: cgroup-v2, cgroup-v1 (kernel accounting) or procfs (sampling). */
  accounting?: string;
  /** The memory limit the worker applied (MB): the task's own, or its worker's default. */
  mem_limit_mb?: number;
  leftover_pids?: string;
  /** Where the last run's stdout went on its worker's host (the task's `stdout`, or one in the log dir). */
  stdout_file?: string;
  /**
   * Where the last run's stderr went, stored only for a task that named its stdout but not its stderr (in the log
   * dir), or whose `stderr` the worker expanded ($VARS, ~); otherwise derived (stderrFileOf).
   */
  stderr_file?: string;
  /** Bytes the last run wrote to stdout (when it went to a regular file). */
  output_bytes?: number;
  /** The stdout file's modification time when the task ended (ms): with output_bytes, whether it is still its own. */
  output_mtime?: number;
  /**
   * Set when the last run's stdout went to something that is not a regular file, nor /dev/null (a FIFO, a device,
   * a socket): JTM neither kept nor followed that output, so a follower cannot say it delivered it.
   */
  output_unfollowed?: boolean;
  kill_requested?: boolean;
  /** Set when JTM itself asked for the kill (`pool-removed`); absent for a user kill (jtm kill, Cromwell abort). */
  kill_cause?: string;
  submit_host?: string;
}

/** How a stored field is parsed (text when not given), and who reads it beyond `status --json`. */
interface FieldUse {
  kind?: 'number' | 'boolean' | 'json';
  /** `jtm report` reads it (the read-tasks script fetches these alone). */
  report?: true;
  /** The dashboard's task page shows it, in this table's order. */
  page?: true;
}

/**
 * Every field of a task record, once (the compiler checks that each TaskRecord field is here): the parser,
 * the report's reader and the dashboard's task page derive their lists from it. `status_name` is derived
 * from `status` when parsed; `history` is stored but decoded apart (task-history.ts).
 */
const FIELDS = {
  status_name: { page: true },
  reason: { report: true, page: true },
  exit_code: { kind: 'number', report: true, page: true },
  pool: { report: true, page: true },
  command: { report: true, page: true },
  cwd: { page: true },
  rc_file: { page: true },
  rc_error: { page: true },
  cromwell_job_id: { report: true, page: true },
  kill_cause: { page: true },
  worker_id: { report: true, page: true },
  host: { page: true },
  pid: { kind: 'number', report: true, page: true },
  attempts: { kind: 'number', report: true, page: true },
  max_retries: { kind: 'number', report: true, page: true },
  queued_at: { kind: 'number', report: true, page: true },
  started_at: { kind: 'number', report: true, page: true },
  ended_at: { kind: 'number', report: true, page: true },
  peak_rss_mb: { kind: 'number', report: true, page: true },
  cpu_time_s: { kind: 'number', report: true, page: true },
  id: { kind: 'number', report: true },
  status: { kind: 'number', report: true },
  pool_spec: { kind: 'json', report: true },
  stdout: {},
  stderr: {},
  output_files: {},
  allow_empty_outputs: { kind: 'boolean' },
  timeout_ms: { kind: 'number' },
  mem_limit: {},
  losses: { kind: 'number' },
  suspend_stops: { kind: 'number' },
  lease_losses: { kind: 'number' },
  redis_silences: { kind: 'number' },
  unstarted_givebacks: { kind: 'number' },
  host_deaths: { kind: 'number' },
  stop_givebacks: { kind: 'number' },
  run_token: {},
  job_token: {},
  submit_id: {},
  accounting: {},
  mem_limit_mb: { kind: 'number' },
  leftover_pids: {},
  stdout_file: {},
  stderr_file: {},
  output_bytes: { kind: 'number' },
  output_mtime: { kind: 'number' },
  output_unfollowed: { kind: 'boolean' },
  kill_requested: { kind: 'boolean' },
  submit_host: {},
} as const satisfies Record<keyof TaskRecord, FieldUse>;

type Field = keyof typeof FIELDS;
const fieldsWhere = (pick: (u: FieldUse) => boolean): Field[] =>
  (Object.keys(FIELDS) as Field[]).filter(f => pick(FIELDS[f]));

/** The record fields `jtm report` reads (not the paths, pids and output settings it does not show). */
export const REPORT_FIELDS: readonly Field[] = fieldsWhere(u => u.report === true);
/** The record fields the dashboard's task page shows, in order. */
export const PAGE_FIELDS: readonly Field[] = fieldsWhere(u => u.page === true);
const NUMBERS = new Set<string>(fieldsWhere(u => u.kind === 'number'));
const BOOLEANS = new Set<string>(fieldsWhere(u => u.kind === 'boolean'));

/** Parses the Redis hash of a task; empty fields are left out. */
export function parseTaskRecord(hash: Record<string, string>): TaskRecord | undefined {
  if (!hash['id']) return undefined;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(hash)) {
    // history: decoded apart (task-history.ts), shown as `events`
    if (v === '' || k === 'kill_requested_at' || k === 'history') continue;
    if (NUMBERS.has(k)) out[k] = Number(v);
    else if (BOOLEANS.has(k)) out[k] = v === '1';
    else if (k === 'pool_spec') out[k] = JSON.parse(v) as PoolSpec;
    else out[k] = v;
  }
  out['attempts'] ??= 0;
  out['max_retries'] ??= 0;
  out['status_name'] = statusName(Number(out['status']));
  return out as unknown as TaskRecord;
}

/**
 * Flattens record fields into hash field/value pairs (objects as JSON, booleans as 1/0). A number that is not
 * finite (NaN, Infinity) is not written, as undefined is: `redis_silences` was stored as the string `NaN` (a count
 * computed from a reply that was not one), which every later read took as no number, and the task ended
 * lostconnection "Redis did not answer its worker NaN times" (adversary 28 F3). No field of a record is a
 * non-finite number; left unwritten, a count reads as before its update.
 */
export function toHashPairs(fields: Partial<Record<keyof TaskRecord, unknown>>): string[] {
  const pairs: string[] = [];
  // for…in, not Object.entries: no array per field (a bulk submit encodes every task's fields).
  for (const k in fields) {
    const v: unknown = fields[k as keyof TaskRecord];
    if (v === undefined || v === null || (typeof v === 'number' && !Number.isFinite(v))) continue;
    pairs.push(
      k,
      typeof v === 'object' ? JSON.stringify(v) : typeof v === 'boolean' ? (v ? '1' : '0') : String(v),
    );
  }
  return pairs;
}

/**
 * Where a task's stderr went on its worker's host, for `status --json` (the original printed both files):
 * the stored `stderr_file` (the path as the worker expanded it); the task's `stderr`; or, for a task that named
 * neither, its stdout file's neighbour in the log dir (`<log dir>/tasks/<id>.err` beside `<id>.out`). Undefined
 * before a run ended.
 */
export function stderrFileOf(r: TaskRecord): string | undefined {
  if (r.stderr_file) return r.stderr_file;
  if (r.stderr) return r.stderr;
  if (r.stdout === undefined && r.stdout_file?.endsWith(`/tasks/${r.id}.out`)) {
    return `${r.stdout_file.slice(0, -'.out'.length)}.err`;
  }
  return undefined;
}
