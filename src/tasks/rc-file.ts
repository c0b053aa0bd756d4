import { existsSync, linkSync, lstatSync, renameSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';

import type { JtmContext } from '../context.js';
import { writeTempBeside } from '../planted-names.js';
import { processUserName } from '../process-user.js';
import { TaskStatus } from './status.js';
import type { TaskRecord } from '../store/task-record.js';

/**
 * The codes JTM writes to a Cromwell `rc` file when it ends a task whose script could not write one.
 * None is 130/137/143, which Cromwell reads as "aborted" and never retries: these make Cromwell fail
 * the call at once and retry it if `maxRetries` allows.
 */
export const JTM_RC_CODES = {
  /** The task hit its JTM time limit (`--timeout`), as GNU timeout. */
  timeout: 124,
  /** The command could not be started (working directory or output files unusable). */
  cannotStart: 126,
  /** The worker running it died and no retries were left (lostconnection). */
  lostconnection: 75,
  /** Its pool was removed while it waited or ran (terminated by remove-pool). */
  poolRemoved: 75,
  /**
   * It went over its memory limit (outofresource): 247, i.e. -9 as a byte, what container runtimes report
   * for an OOM-killed container, and not 137 (SIGKILL), which Cromwell reads as an abort.
   */
  outofresource: 247,
} as const;

/**
 * A word of the command that is Cromwell's call script, `<call dir>/execution/script` (quoted or not): what its
 * submit runs with `/bin/bash`, and what an original-style `submit-docker` hands to a wrapper (`shifter
 * --image=… /bin/bash <script>`, `singularity exec …`, `/usr/bin/env bash …`), whose calls had no rc path and
 * so none of the rc guarantees (adversary 9 J10).
 */
const CROMWELL_SCRIPT = /(?:^|\s)(['"]?)(\/[^'"\s]*\/execution)\/script\1(?=\s|$)/;

/** The rc path of a Cromwell command, or undefined when no word of it is `<…>/execution/script`. */
export function deriveRcFile(command: string): string | undefined {
  const m = CROMWELL_SCRIPT.exec(command);
  return m?.[2] ? join(m[2], 'rc') : undefined;
}

/** Exit codes Cromwell reads in rc as an abort, which it never retries: a failure must not look like one. */
const ABORT_CODES: ReadonlySet<number> = new Set([130, 137, 143]);

/** `kill_cause` of a running task killed because remove-pool --force removed its pool. */
export const KILL_CAUSE_POOL_REMOVED = 'pool-removed';

/**
 * Which rc code a record ended by JTM gets; undefined when JTM must write nothing (user kill, normal end).
 * The single place that decides: callers may ask for any final record.
 */
export function rcCodeFor(record: TaskRecord): number | undefined {
  // A user kill (Cromwell abort) is Cromwell's business; a kill JTM asked for (pool removed) is JTM's. Only
  // when the kill is what ended the task: a kill that came as a timeout (or the memory watch) was already
  // ending it is recorded beside a status the kill did not decide, which gets its code (a `timeout` without
  // rc 124 contradicted the documented table).
  if (
    record.status === TaskStatus.terminated &&
    record.kill_requested &&
    record.kill_cause !== KILL_CAUSE_POOL_REMOVED
  )
    return undefined;
  switch (record.status) {
    case TaskStatus.timeout:
      return JTM_RC_CODES.timeout;
    case TaskStatus.lostconnection:
      return JTM_RC_CODES.lostconnection;
    case TaskStatus.outofresource:
      return JTM_RC_CODES.outofresource;
    case TaskStatus.terminated:
      // Terminated without a user kill: by remove-pool (waiting, or running with --force) or by
      // reconciliation of a task whose pool is gone.
      return JTM_RC_CODES.poolRemoved;
    case TaskStatus.failed:
      // Never started: 126. Else its own exit code, which the script wrote itself if it ran (an rc that exists is
      // never replaced); a wrapper that failed before the script (`docker run` exit 125: no image, no daemon) left
      // none, and Cromwell waited 2 × exit-code-timeout-seconds, then recorded 79 "assuming external kill".
      if (record.exit_code === undefined) return JTM_RC_CODES.cannotStart;
      return record.exit_code === 0 || ABORT_CODES.has(record.exit_code) ? 1 : record.exit_code;
    default:
      return undefined;
  }
}

/**
 * When JTM itself ends a task whose Cromwell script could not write `rc` (timeout, lost worker with no
 * retries left, removed pool, command that could not start), it writes a non-abort code there so that
 * Cromwell fails or retries the call at once instead of waiting for check-alive. An existing `rc` is
 * never replaced: the code goes to a temp file that is hard-linked to `rc` (which fails if `rc` exists),
 * so a script that finished at the same moment wins. Callers must not call this for a user kill
 * (Cromwell has written 143). Returns the code written, or undefined.
 */
export async function writeRcForEndedTask(ctx: JtmContext, record: TaskRecord): Promise<number | undefined> {
  const path = record.rc_file;
  const code = rcCodeFor(record);
  if (!path || code === undefined) return undefined;
  const log = ctx.logger.child({ task: record.id, rc_file: path });
  let tmp: string | undefined;
  try {
    tmp = writeTempBeside(path, `${code}\n`);
    try {
      linkSync(tmp, path);
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      if (e.code === 'EEXIST') {
        // Something else in the way (a directory, a FIFO) is not an rc the script wrote: say what it is.
        if (lstatSync(path).isFile()) log.info('rc already written by the script: left alone');
        else
          await rcNotWritten(
            ctx,
            record,
            `could not write ${path}: its path is taken by something other than a file`,
          );
        return undefined;
      }
      // Filesystems without hard links: rename, which could only race with a script ending this instant.
      if (e.code !== 'EPERM' && e.code !== 'ENOTSUP' && e.code !== 'EXDEV') throw err;
      if (existsSync(path)) return undefined;
      renameSync(tmp, path);
      tmp = undefined;
    }
    log.info({ code, status: record.status_name }, 'rc written for a task JTM ended');
    return code;
  } catch (err) {
    await rcNotWritten(ctx, record, `could not write ${path} as user ${writer()}: ${errnoText(err)}`);
    return undefined;
  } finally {
    try {
      if (tmp !== undefined) unlinkSync(tmp);
    } catch {
      // already gone
    }
  }
}

/**
 * JTM ended a task and could not write its rc: logged, and noted on the record (`rc_error`, with an event), since
 * Cromwell will not see the end until check-alive says the task is gone (`status --json` says why; the manager,
 * remove-pool and the worker may run as different users, adversary 12 D4).
 */
async function rcNotWritten(ctx: JtmContext, record: TaskRecord, error: string): Promise<void> {
  ctx.logger.warn({ task: record.id, rc_file: record.rc_file }, error);
  await ctx.tasks.noteRcNotWritten(record.id, error).catch(() => false);
}

/** `ENOENT (no such file or directory)`: the code and its text, without the temp file's path Node adds. */
function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const text = /^[A-Z0-9]+: ([^,]+)/.exec(e.message ?? '')?.[1];
  return e.code ? `${e.code}${text ? ` (${text})` : ''}` : String(e.message ?? err);
}

/** The name of the user this process runs as (its uid when it has no name). */
function writer(): string {
  return processUserName() ?? String(process.getuid?.() ?? '?');
}
