/**
 * Every error JTM raises on purpose: a stable `code` for scripts and `--json`, and the exit code the CLI uses.
 * Exit codes (documented in the README): 1 invalid input or a negative answer, 3 a follower that could not
 * deliver every byte (OutputGapError), 255 JTM/Redis unavailable (the original's "command timeout"), 255 for
 * `kill` of an unknown task (as the original).
 */
export class JtmError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly exitCode = 1,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class InvalidInputError extends JtmError {
  constructor(message: string) {
    super(message, 'INVALID_INPUT', 1);
  }
}

/**
 * A pipe named as an input file (`--config <(...)`, a FIFO) not written and closed within the wait allowed
 * (input-file.ts's pipeWaitMs): invalid input like any unreadable file, so isalive answers `unknown`.
 */
export class PipeNotWrittenError extends InvalidInputError {
  constructor(what: string, path: string, ms: number, why: string) {
    super(`cannot read ${what} ${path}: a pipe ${why} within ${ms} ms`);
  }
}

/** The command's own output could not be written (stdout on a full disk, a device that takes no data). */
export class OutputWriteError extends JtmError {
  /** `undone`: what the command did about what it could not say (submit: its tasks killed). */
  constructor(err: NodeJS.ErrnoException, undone?: string) {
    super(
      `cannot write the output: ${errnoText(err)}${undone ? `; ${undone}` : ''}`,
      'OUTPUT_UNWRITABLE',
      1,
      { cause: err },
    );
  }
}

/** `ENOSPC: no space left on device` of a system error (its message without the call: `, write`). */
function errnoText(err: NodeJS.ErrnoException): string {
  const detail = err.message.split(',')[0] ?? err.message;
  if (!err.code) return err.message;
  return detail.startsWith(err.code) ? detail : `${err.code}: ${detail}`;
}

export class TaskNotFoundError extends JtmError {
  constructor(id: number | string, exitCode = 1) {
    super(`no task with id ${id}`, 'TASK_NOT_FOUND', exitCode);
  }
}

export class PoolNotFoundError extends JtmError {
  constructor(pool: string) {
    super(`no pool named ${pool}`, 'POOL_NOT_FOUND', 1);
  }
}

/**
 * Redis not reached, or reached but unable to serve now: a cause that says why (unusableRedisReason) is named
 * instead of "cannot reach Redis" — still REDIS_UNAVAILABLE, exit 255, isalive `unknown`: it passes.
 */
export class RedisUnavailableError extends JtmError {
  /**
   * The connection that failed had been made (connected, or Redis answered on it) before it failed: a reset or a
   * close, not a Redis that was never there. A follower rides out such a failure (task-output.ts's redisAccess).
   */
  readonly reached: boolean;

  /** `reason`: why it cannot serve, when JTM found it out itself (a replica: replica-check.ts) rather than from a reply. */
  constructor(where: string, cause?: unknown, opts: { reached?: boolean; reason?: string } = {}) {
    const reason = opts.reason ?? unusableRedisReason(cause);
    super(
      reason
        ? `Redis at ${where} ${reason}${causeText(cause)}`
        : `cannot reach Redis at ${where}${causeText(cause)}`,
      'REDIS_UNAVAILABLE',
      255,
      { cause },
    );
    this.reached = opts.reached ?? false;
  }
}

/**
 * Why a Redis that answered cannot serve anyone now, from its error reply, in words; undefined for any other
 * error. Each passes by itself: another client's script ends, the load ends, a client leaves, the master comes
 * back (adversary 24 F8: each read "cannot reach Redis (Connection is closed.)", Redis's own reply hidden).
 */
export function unusableRedisReason(err: unknown): string | undefined {
  const msg = err instanceof Error ? err.message : '';
  if (/^BUSY\s/.test(msg)) return 'is busy running a script';
  if (/^LOADING\b/.test(msg)) return 'is loading its dataset';
  if (/^MASTERDOWN\b/.test(msg)) return 'is a replica cut from its master';
  if (/^ERR max number of clients reached/.test(msg)) return 'refuses more clients';
  return undefined;
}

/**
 * A submit whose writes failed part-way (Redis refused or dropped a write): it was not committed, so none of
 * its tasks will run. Exit 255 like any Redis failure; 1 is kept for invalid input, where nothing is written.
 */
export class SubmitIncompleteError extends JtmError {
  constructor(cause: unknown) {
    super(
      `submit did not complete, none of its tasks will run${causeText(cause)}`,
      'SUBMIT_INCOMPLETE',
      255,
      {
        cause,
      },
    );
  }
}

/**
 * A submit taken back by a signal (SIGINT, SIGTERM, SIGHUP, SIGQUIT) that came before its commit was sent: none of
 * its tasks will run (its records, if it wrote any, are failed). Exit 128 + the signal's number, as a shell says
 * of a command the signal ended; the line says it was taken back. A signal after the commit was sent changes
 * nothing: the submit finishes and prints its ids (adversary 34 H1).
 */
export class SubmitInterruptedError extends JtmError {
  constructor(
    readonly signal: string,
    exitCode: number,
    count: number,
  ) {
    super(
      `${signal} before its commit: the submit was taken back, none of its ${count} task(s) will run`,
      'SUBMIT_INTERRUPTED',
      exitCode,
    );
  }
}

/**
 * A submit over several shards (JTM_SHARDS) whose commit reached some of them only (Redis failed between the
 * shards' commit writes): the committed shards' tasks will run, the others' were failed.
 */
export class SubmitPartlyCommittedError extends JtmError {
  constructor(
    readonly committedIds: readonly number[],
    readonly failedIds: readonly number[],
    cause: unknown,
  ) {
    super(
      `submit partly committed: ${committedIds.length} of its tasks will run (JTM task IDs ${idList(committedIds)}), ${failedIds.length} were failed (${idList(failedIds)})${causeText(cause)}`,
      'SUBMIT_PARTIAL',
      255,
      { cause },
    );
  }
}

/**
 * Redis stopped answering after a submit's commit was sent, and did not answer again within JTM_SUBMIT_RETRY: the
 * records and jobs are in Redis (they were answered before the commit was sent), but whether the commit was applied
 * is not known. Each task then either runs (applied) or ends failed "submit did not complete" at the manager's next
 * reconciliation (not applied), writing its rc file: never both, never silently. `jtm submit` prints the ids and
 * exits 0 with this line on stderr (adversary 26 F1: it exited 255 and printed no id while the tasks ran, invisible
 * to Cromwell, which fails such a call for good and runs it again); the API rejects with it (`ids`).
 */
export class SubmitUnsettledError extends JtmError {
  constructor(
    readonly ids: readonly number[],
    cause: unknown,
  ) {
    super(
      `Redis stopped answering after this submit's commit was sent: its ${ids.length} task(s) (JTM task IDs ${idList(ids)}) run if the commit reached Redis, else they end failed "submit did not complete" at the manager's next reconciliation${causeText(cause)}`,
      'SUBMIT_UNSETTLED',
      255,
      { cause },
    );
  }
}

/**
 * A kill request was sent but Redis did not answer it, nor anything after, within JTM_KILL_RETRY: it may have been
 * applied (the task then ends terminated). Exit 255 like an unreachable Redis (Cromwell ignores kill's exit code);
 * the line says what to check (adversary 26 F4: "cannot reach Redis" alone, for a kill that had happened).
 */
export class KillUnsettledError extends JtmError {
  constructor(
    readonly taskId: number,
    cause: unknown,
  ) {
    super(
      `the kill of task ${taskId} was sent but Redis stopped answering: it may have been applied (jtm status -tid ${taskId} says, once Redis answers)${causeText(cause)}`,
      'KILL_UNSETTLED',
      255,
      { cause },
    );
  }
}

/** At most 20 ids, then how many more. */
function idList(ids: readonly number[]): string {
  const shown = ids.slice(0, 20).join(', ');
  return ids.length > 20 ? `${shown} and ${ids.length - 20} more` : shown;
}

/** REDIS_URL cannot work as written (another scheme, a database that is not a number or that the server lacks). */
export class RedisUrlError extends JtmError {
  constructor(url: string, why: string) {
    super(`REDIS_URL ${url}: ${why}`, 'REDIS_URL_INVALID', 255);
  }
}

/**
 * Redis refused JTM's credentials or rights (WRONGPASS, NOAUTH, NOPERM). Not transient: retrying cannot help,
 * so commands say so at once (exit 255, as for an unreachable Redis) instead of "Connection is closed."
 * after their retries, and isalive does not answer `unknown`.
 */
export class RedisAuthError extends JtmError {
  constructor(where: string, cause?: unknown) {
    super(
      `Redis at ${where} refused JTM${causeText(cause)}: check the user and password in REDIS_URL, and the user's ACL rights`,
      'REDIS_AUTH',
      255,
      { cause },
    );
  }
}

/**
 * The Redis connection's TLS cannot work as configured: a certificate file that cannot be read or is not a
 * certificate, TLS settings with a plain redis:// URL, a server that does not speak TLS or that the CA cannot
 * verify. Not transient, so exit 255 at once (isalive must not answer `unknown` forever), as for WRONGPASS.
 */
export class RedisTlsError extends JtmError {
  constructor(message: string, cause?: unknown) {
    super(`${message}${causeText(cause)}`, 'REDIS_TLS', 255, { cause });
  }
}

/** Whether a connection error is TLS failing for good (handshake or certificate), not a network hiccup. */
export function isTlsError(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && /^(ERR_TLS_|ERR_SSL_|DEPTH_ZERO|SELF_SIGNED|UNABLE_TO_|CERT_)/.test(code))
    return true;
  const msg = err instanceof Error ? err.message : String(err);
  return /SSL routines|wrong version number|self[- ]signed certificate|unable to (verify|get local issuer)|certificate has expired|does not match certificate's altnames/i.test(
    msg,
  );
}

/**
 * Whether an error (an ioredis reply or connection error) is Redis refusing credentials or rights. A command
 * refused inside a script is reported without the NOPERM word ("The user executing the script can't run this
 * command"): `jtm kill` answered it with exit 1, "invalid id", to Cromwell.
 */
export function isAuthError(err: unknown): boolean {
  const cause = discardCause(err);
  const msg = cause instanceof Error ? cause.message : String(cause);
  return /\b(WRONGPASS|NOAUTH|NOPERM)\b|invalid username-password pair|invalid password|user executing the script can't run/i.test(
    msg,
  );
}

/**
 * Whether Redis refused a command for the user's rights (ACL): NOPERM, or a command a script runs that the
 * user may not ("The user executing the script can't run this command"). Not transient: the same command
 * will be refused again until an admin changes the user.
 */
export function isRightsError(err: unknown): boolean {
  const cause = discardCause(err);
  const msg = cause instanceof Error ? cause.message : String(cause);
  return /\bNOPERM\b|user executing the script can't run/i.test(msg);
}

/**
 * What made Redis discard a transaction: EXEC answers only "EXECABORT Transaction discarded because of previous
 * errors.", and ioredis keeps the queued commands' refusals in `previousErrors`; the first is the cause. A worker
 * whose ACL user lacks PEXPIRE said "Redis answered with an error: EXECABORT …", naming no command (adversary 24
 * F8). Any other error is returned as it is.
 */
export function discardCause(err: unknown): unknown {
  const previous = (err as { previousErrors?: unknown } | undefined)?.previousErrors;
  if (!(err instanceof Error) || !/^EXECABORT\b/.test(err.message) || !Array.isArray(previous)) return err;
  return previous.find(e => e instanceof Error) ?? err;
}

/**
 * Redis answered a command with an error (out of memory, a read-only replica, a failed save that stops writes,
 * a database still loading, …): Redis is unusable for JTM now, which is exit 255 like an unreachable Redis —
 * not exit 1, which kill, status and isalive give for an id that is not there.
 */
export class RedisRefusedError extends JtmError {
  constructor(cause: Error) {
    super(`Redis answered with an error: ${cause.message}`, 'REDIS_REFUSED', 255, { cause });
  }
}

/**
 * Whether `err` is Redis refusing writes for a while: out of memory (`OOM`: retention expiries or an operator free
 * it), a failing snapshot (`MISCONF`), a node demoted to a replica during a failover (`READONLY`). A kill refused so
 * is tried again within JTM_KILL_RETRY, as one that could not reach Redis: it exited 255 at once, and Cromwell,
 * which ignores kill's exit code, had its abort dropped while the task ran to its end (adversary 37 F2).
 */
export function isWriteRefusal(err: unknown): boolean {
  const cause = discardCause(err);
  return isReplyError(cause) && /^(OOM|MISCONF|READONLY)\b/.test(cause.message);
}

/** Whether `err` is an error reply from Redis (ioredis's ReplyError), as opposed to one of JTM's own. */
export function isReplyError(err: unknown): err is Error {
  return err instanceof Error && err.name === 'ReplyError';
}

/**
 * JTM_SHARDS differs from the count the site was set up with (docs/scaling.md): ids would be looked up on
 * the wrong shard, so nothing runs. Exit 255 like any unusable Redis: isalive must not answer "no" (exit 1).
 */
export class ShardCountMismatchError extends JtmError {
  constructor(site: number, asked: number) {
    super(
      `JTM_SHARDS=${asked} but this site (REDIS_URL, JTM_PREFIX) has ${site} shard${site === 1 ? '' : 's'}: set JTM_SHARDS=${site} (the count cannot change while the site has tasks)`,
      'SHARD_COUNT_MISMATCH',
      255,
    );
  }
}

/**
 * A Redis Cluster site of one shard whose JTM_PREFIX has no `{hash tag}`: its keys hash to slots all over the
 * cluster, and every Lua script that touches two of them fails (CROSSSLOT). Found only at submit, after the
 * shard count had been written (adversary 40 L1); now refused as the connection is made, before any command.
 * 255 as for the other settings that cannot work: `isalive` must never answer "no" for it.
 */
export class ClusterPrefixError extends JtmError {
  constructor(prefix: string) {
    super(
      `JTM_PREFIX=${prefix} has no hash tag: on a Redis Cluster with JTM_SHARDS=1 every key of the site must share one slot, so the prefix needs braces (e.g. JTM_PREFIX={${prefix}}), or JTM_SHARDS above 1`,
      'CLUSTER_PREFIX_UNTAGGED',
      255,
    );
  }
}

/** A range of a task's stdout that a reader could not deliver: `bytes` bytes from byte `offset` of the output. */
export interface OutputGap {
  offset: number;
  bytes: number;
}

/**
 * A follower of a task's output (`followLogs`, `jtm logs --follow`) delivered everything it could but not every
 * byte: some went out of the Redis copy (it keeps a tail) while the task's stdout file could not be read here
 * (another host, another user's file, removed or rewritten). Raised once the task has ended, after the last
 * byte that could be delivered; `gaps` says where the missing bytes were, in order. Exit 3: the output printed
 * is not the whole output, which is neither invalid input (1) nor Redis unavailable (255).
 */
export class OutputGapError extends JtmError {
  readonly missedBytes: number;

  constructor(
    readonly taskId: number,
    readonly gaps: OutputGap[],
  ) {
    const missed = gaps.reduce((sum, g) => sum + g.bytes, 0);
    super(
      `${missed} bytes of task ${taskId}'s output could not be delivered (${gaps.length} ${gaps.length === 1 ? 'gap' : 'gaps'}, the first at byte ${gaps[0]?.offset ?? 0}): the Redis copy no longer held them and the task's stdout file could not be read here`,
      'OUTPUT_GAP',
      3,
    );
    this.missedBytes = missed;
  }
}

/**
 * Where a follower's output started over, after `offset` bytes had been delivered: the task's stdout file was
 * truncated or rewritten while the task ran (`rewritten`), or the task was run again (`run again`: a lost worker, or
 * a run given back, by a worker's stop among others).
 */
export interface OutputRestart {
  offset: number;
  cause: 'rewritten' | 'run again';
}

/**
 * A follower (`followLogs`, `jtm logs --follow`) delivered bytes that the output no longer holds: the task's
 * stdout file was truncated or rewritten while it ran, or the task was run again, and what followed was delivered
 * after them (adversary 23 F1, F2, F5: exit 0 before, with an output that was neither the file's nor any run's).
 * Raised once the task has ended, after its last byte. Exit 3, as a gap: what was printed is not the output.
 */
export class OutputRestartedError extends JtmError {
  constructor(
    readonly taskId: number,
    readonly restarts: OutputRestart[],
  ) {
    const first = restarts[0] as OutputRestart;
    const cause =
      first.cause === 'rewritten'
        ? 'its stdout file was truncated or rewritten while it ran (by the task, or by another task naming the same file)'
        : // Not "lost": a run given back by a worker's graceful stop is run again too (adversary 36 L4).
          'it was run again (an earlier attempt did not finish)';
    super(
      `task ${taskId}'s output started over after ${first.offset} bytes had been delivered${restarts.length > 1 ? ` (${restarts.length} times)` : ''}: ${cause}; what was delivered before is not part of the output as it stands now (jtm logs -tid ${taskId} prints that)`,
      'OUTPUT_RESTARTED',
      3,
    );
  }
}

/**
 * A follower's task sent its stdout to something that is not a regular file (a FIFO, a device other than
 * /dev/null, a socket): JTM neither kept nor followed that output, so the follower cannot say that it delivered it
 * (adversary 23 F6: exit 0 with 0 bytes before, for a task that had written to its FIFO). Exit 3, as a gap.
 */
export class OutputNotFollowedError extends JtmError {
  constructor(
    readonly taskId: number,
    readonly path: string,
  ) {
    super(
      `task ${taskId} wrote its stdout to ${path}, which is not a regular file (a FIFO or a device): its output was neither kept nor followed`,
      'OUTPUT_NOT_FOLLOWED',
      3,
    );
  }
}

/**
 * A follower's task record vanished from Redis while it followed the task's output (FLUSHALL, eviction, a
 * restart without AOF or from an older snapshot): the task's end, and so whether the output delivered is the
 * whole of it, cannot be known (adversary 24 F4: `jtm logs --follow` took the record gone for an ended task and
 * exited 0, silently, with 13 of the task's 14 lines). Exit 255: Redis lost what JTM needs, which is Redis
 * trouble, not a gap the follower could measure and name (3).
 */
export class TaskRecordLostError extends JtmError {
  constructor(
    readonly taskId: number,
    readonly deliveredBytes: number,
  ) {
    super(
      `task ${taskId}'s record is gone from Redis while its output was followed, after ${deliveredBytes} bytes: Redis lost its data (flushed, evicted, or restarted without AOF), so the task's end and the rest of its output are unknown`,
      'TASK_RECORD_LOST',
      255,
    );
  }
}

export class SlurmError extends JtmError {
  /** transient: a refusal that may heal by itself (slurm-commands.ts isTransientSbatchError). */
  constructor(
    message: string,
    readonly transient = false,
    /** Slurm itself answered no (sbatch exited with its error), so no job was queued; not a timeout of ours. */
    readonly refused = false,
    /** This host's Slurm client failed, not Slurm (slurm-commands.ts isSlurmClientFault). */
    readonly clientFault = false,
  ) {
    super(message, 'SLURM_ERROR', 1);
  }
}

function causeText(cause: unknown): string {
  if (!(cause instanceof Error) || !cause.message) return '';
  return ` (${cause.message.split('\n')[0]})`;
}

/** Turns anything thrown into an Error, keeping the original as `cause`. */
/** The errno code of a refusal for want of permission (EACCES, EPERM), or undefined for any other error. */
export function permissionCode(err: unknown): 'EACCES' | 'EPERM' | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return code === 'EACCES' || code === 'EPERM' ? code : undefined;
}

export function toError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(typeof value === 'string' ? value : JSON.stringify(value), { cause: value });
}

/** The dashboard (or the manager's metrics endpoint, `what`) would listen beyond loopback without credentials. */
export class DashboardExposedError extends JtmError {
  constructor(host: string, what = 'the dashboard') {
    super(
      `refusing to serve ${what} on ${host} without credentials: set JTM_DASHBOARD_USER and JTM_DASHBOARD_PASSWORD, or bind to 127.0.0.1`,
      'DASHBOARD_EXPOSED',
      1,
    );
  }
}

/** True for errors that mean Redis could not be reached or did not answer (worth a retry). */
export function isConnectionError(err: unknown): boolean {
  if (err instanceof RedisUnavailableError) return true;
  // Its message names the connection failure behind it; it is a submit's outcome, not one to retry.
  if (err instanceof SubmitUnsettledError || err instanceof KillUnsettledError) return false;
  if (err instanceof RedisAuthError || err instanceof RedisTlsError || isAuthError(err)) return false;
  const msg = err instanceof Error ? err.message : String(err);
  // ioredis's Cluster client words a master that is down as redirections that never end (MOVED to the dead
  // node, or its closed connection) or a slots refresh that fails: read as "dead" (isalive exit 1) before
  // (adversary 11 L4).
  return /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH|Connection is closed|Stream isn't writeable|enableOfflineQueue|no answer within|Reached the max retries|LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|Command timed out|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available/i.test(
    msg,
  );
}

/**
 * What Redis's client threw, as the JtmError that says it: a command refused by an ACL (NOPERM) after a good
 * connection is as final as a wrong password; Redis not reached is REDIS_UNAVAILABLE in whatever words the
 * client put it (a Cluster's master down: "Too many Cluster redirections" was exit 1 from pools, check-worker,
 * …; adversary 11 L4); an error reply (READONLY, OOM, EXECABORT, …) is REDIS_REFUSED. Anything else is
 * returned as an Error, unchanged. The CLI's error report and the programmatic API both map through this.
 */
export function asJtmError(discarded: unknown, redisWhere: string): Error {
  if (discarded instanceof JtmError) return discarded;
  // A transaction's refusal is named by the command refused, not by EXEC's EXECABORT.
  const thrown = discardCause(discarded);
  if (isAuthError(thrown)) return new RedisAuthError(redisWhere, thrown);
  if (isRedisClientFailure(thrown)) return new RedisUnavailableError(redisWhere, thrown);
  // A Cluster client follows MOVED and ASK itself: one that reaches here came to a plain redis:// connection to a
  // Cluster node, whose key is on another node. The raw "MOVED 13572 host:port" named no mistake (adversary 40 L3).
  if (isReplyError(thrown) && /^(MOVED|ASK) \d+ /.test(thrown.message))
    return new RedisUrlError(
      redisWhere,
      `this is a Redis Cluster node (it answered ${thrown.message}): use redis+cluster://`,
    );
  if (isReplyError(thrown)) return new RedisRefusedError(thrown);
  return toError(thrown);
}

/**
 * The Redis client's own ways of saying it could not reach Redis, which no command turned into its error: a
 * Cluster's master down or stopped. Narrower than isConnectionError (ETIMEDOUT, EPIPE, … of a file on NFS
 * are not Redis's).
 */
export function isRedisClientFailure(err: unknown): boolean {
  const msg = err instanceof Error ? err.message : '';
  // A socket error of a connection (a node refusing or resetting it) has the peer's port; a file's has none.
  const socket = typeof (err as { port?: unknown } | undefined)?.port === 'number';
  // ioredis's word for a command whose connection went away mid-command (adversary 14 F10: Redis stopped
  // during `jtm report`'s read was exit 1, with a line naming an ioredis option).
  if (err instanceof Error && err.name === 'MaxRetriesPerRequestError') return true;
  return (
    // `no answer within N ms`: the connection cut for silence (silence-watch.ts, connect's stall-aware timeout).
    /^no answer within \d+ ms$/.test(msg) ||
    /^(Reached the max retries per request limit|Too many Cluster redirections|Failed to refresh slots cache|None of startup nodes is available|Command timed out|Connection is closed|Stream isn't writeable|CLUSTERDOWN|MASTERDOWN|TRYAGAIN)/.test(
      msg,
    ) ||
    (socket && /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|EHOSTUNREACH/.test(msg))
  );
}

/**
 * A call of the programmatic API made after close(), or a followLogs still running when close() was called:
 * the program closed the client, Redis may be fine (it was reported as "cannot reach Redis", adversary 22 M4).
 */
export class ClientClosedError extends JtmError {
  constructor() {
    super('the JTM client is closed (close() was called)', 'CLIENT_CLOSED', 1);
  }
}

/**
 * What the programmatic API did not expect (a bug, or a failure no other class names): code ERROR, as the CLI's
 * --json says of it, with the original error as `cause`.
 */
export class UnexpectedError extends JtmError {
  constructor(cause: Error) {
    super(cause.message, 'ERROR', 1, { cause });
  }
}
