import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { isAbsolute } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { forTask, withContext, type ContextSource, type JtmContext } from '../context.js';
import {
  isConnectionError,
  OutputGapError,
  OutputNotFollowedError,
  OutputRestartedError,
  RedisUnavailableError,
  TaskNotFoundError,
  TaskRecordLostError,
  toError,
  type JtmError,
  type OutputGap,
  type OutputRestart,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { TaskRecord } from '../store/task-record.js';
import { writeFileRange } from './output-range.js';
import { isFinal } from './status.js';
import { refuseReplica } from '../redis/replica-check.js';

/** While the record does not name the run's stdout file yet, how long a gap waits for it (see `reach`). */
const HOLD_MS = 5_000;
/** Polls of a follower: the usual pace, and while a gap waits for the record to name the file. */
const POLL_MS = 500;
const HOLD_POLL_MS = 100;
/** Pauses between a follower's tries to reach Redis again: doubling from the first to the last. */
const FIRST_RETRY_PAUSE_MS = 100;
const MAX_RETRY_PAUSE_MS = 1000;

/**
 * Where a reader of a task's output gets Redis: one context (its commands fail with the connection), or a
 * follower that rides out an outage: a source it connects again through (a command's session, the API's
 * client), for up to `retryMs` (JTM_FOLLOW_RETRY) from the moment Redis was lost.
 */
export type OutputSource = JtmContext | ReconnectingSource;

export interface ReconnectingSource {
  readonly source: ContextSource;
  readonly logger: Logger;
  readonly retryMs: number;
  /** Redis was reached for this follow before its first read (`jtm logs --follow` opens its connection first). */
  readonly reached?: boolean;
}

/**
 * A task's stdout, as bytes (binary-safe: nothing is decoded), in order and without a gap whenever the bytes
 * exist somewhere this reader can get them. After the task has ended: its stdout file when that file is
 * readable here and has the size its worker recorded (the file is authoritative and complete). Otherwise the
 * Redis copy, which holds the last JTM_OUTPUT_TAIL_BYTES while the task runs and the last JTM_OUTPUT_KEEP_BYTES
 * once it has ended: each part of it carries its offset in the output, so a part the copy no longer holds (the
 * start of a long output, what went by while a follower was behind, the middle of an output that ended between
 * two polls) is read from the stdout file when that file is readable here and still holds this run's output
 * (its bytes where the copy resumes are the copy's; once ended, its recorded size and mtime). With `follow`,
 * new output until the task has ended; from a reconnecting source, through losing Redis for up to its
 * `retryMs`, each byte still written once, in order (adversary 26 F5: one reset ended a follow, exit 255).
 *
 * Returns the gaps: parts that neither source had (each also one warning on stderr), in output order; empty when
 * every byte was written; and the restarts: where the output started over after some of it was written (its
 * stdout file truncated or rewritten while the task ran, the task run again), each also a warning.
 */
export interface OutputReport {
  gaps: OutputGap[];
  restarts: OutputRestart[];
  /** Where the ended run's stdout went when that was neither kept nor followed (a FIFO, a device). */
  unfollowed?: string;
}

export async function streamTaskOutput(
  from: OutputSource,
  id: number,
  write: (chunk: Buffer) => void | Promise<void>,
  follow: boolean,
  /** Ends a follow between two reads, rejecting with the signal's reason (the API's close()). */
  signal?: AbortSignal,
): Promise<OutputReport> {
  const logger = from.logger;
  /** Whether anything was written (the start of the output warned of once), and how many bytes in all. */
  let started = false;
  let delivered = 0;
  // Every Redis read goes through `redis`: a follower's reconnects keep what is below (the offset written up
  // to, the stream entry read up to, the run), so it resumes at the byte where it stopped. Nothing is written
  // between a read and the state it moves, so a read that fails has delivered nothing, and is made again.
  const redis = redisAccess(from, id, signal, () => delivered);
  const record = await redis(async ctx => {
    const found = await ctx.tasks.get(id);
    // A replica's "no such task" is Redis unavailable (refuseReplica), ridden out by a follower like an outage.
    if (!found) await refuseReplica(ctx);
    return found;
  });
  if (!record) throw new TaskNotFoundError(id);
  const restarts: OutputRestart[] = [];
  if (isFinal(record.status) && (await copyFile(record.stdout_file, record, write)))
    return { gaps: [], restarts };
  let last: string | undefined;
  /** The output offset up to which this reader has written, and the run (token) that offset is of. */
  let pos = 0;
  let run: string | undefined = record.run_token;
  /** How many times the run's output started over (its stdout file truncated or rewritten): the entries' `ep`. */
  let epoch = 0;
  /** What the record says of the run read: its status, its stdout file and, once ended, the file's size and mtime. */
  let view: RunView = viewOf(record);
  const gaps: OutputGap[] = [];
  /** When a gap began to wait for the record to name the stdout file (undefined: none waits). */
  let holding: number | undefined;
  /** The ended run's output was not followed (a FIFO, a device): the report says where it went. */
  let unfollowed = record.output_unfollowed === true;
  const report = (): OutputReport => {
    const file = unfollowed ? (view.file ?? record.stdout_file) : undefined;
    // Said here only where no error will say it: a follow ends with OUTPUT_NOT_FOLLOWED (its one line; with this
    // warning too, `logs -f` wrote two lines for one fact: adversary 34 M8).
    if (file !== undefined && !follow)
      logger.warn(
        { task: id, file },
        `the task's stdout went to ${file}, which is not a regular file: its output was not kept`,
      );
    return { gaps, restarts, ...(file !== undefined ? { unfollowed: file } : {}) };
  };
  /** The output starts over from its first byte: what was written before is said to be no longer part of it. */
  const startOver = (cause: OutputRestart['cause']): void => {
    if (started) {
      restarts.push({ offset: delivered, cause });
      logger.warn(
        { task: id, delivered_bytes: delivered },
        cause === 'rewritten'
          ? "the task's stdout file was truncated or rewritten while it ran: its output starts over here; what was printed before is no longer in the file"
          : 'the task was started again: its output starts over here; what was printed before came from an earlier attempt',
      );
    }
    pos = 0;
    holding = undefined;
  };
  /** Whether a part of the copy (its `ep`) comes from the output as it now stands; a newer one starts it over. */
  const current = (ep: number): boolean => {
    if (ep < epoch) return false;
    if (ep > epoch) {
      epoch = ep;
      startOver('rewritten');
    }
    return true;
  };
  const written = (chunk: Buffer): void | Promise<void> => {
    started = true;
    delivered += chunk.length;
    return write(chunk);
  };
  const missed = (bytes: number, why: string): void => {
    const where = pos;
    gaps.push({ offset: where, bytes });
    logger.warn(
      { task: id, dropped_bytes: bytes, offset: where },
      where === 0 && !started
        ? `the first ${bytes} bytes of output are not kept in Redis (JTM_OUTPUT_TAIL_BYTES, JTM_OUTPUT_KEEP_BYTES once ended): ${why}`
        : `${bytes} bytes of output went by while this reader was behind (the Redis copy keeps only the output's end): ${why}`,
    );
  };
  /**
   * Brings the reader to `off`, where the Redis copy resumes with `next` (none: the ended output's end): the
   * bytes between from the stdout file when it is readable here and still this run's, else they are a gap.
   * False: the record does not name the run's file yet (the worker writes it a second into the run, or with the
   * end: a short task's kept tail comes a moment before its end), so the caller reads again shortly; for at most
   * HOLD_MS, after which the bytes are a gap.
   */
  const reach = async (off: number, next: Buffer | undefined): Promise<boolean> => {
    if (off <= pos) return true;
    const ended = hasEnded(view);
    let why: string;
    if (view.file === undefined) {
      if (follow && !ended && Date.now() - (holding ??= Date.now()) < HOLD_MS) return false;
      why = 'the record names no stdout file for this run';
    } else {
      const check = {
        next,
        ended: ended && view.bytes !== undefined ? { bytes: view.bytes, mtime: view.mtime } : undefined,
      };
      const got = await writeFileRange(view.file, pos, off, check, written);
      pos = got.reached;
      why = got.why ?? '';
    }
    holding = undefined;
    if (pos < off) missed(off - pos, why);
    pos = off;
    return true;
  };
  /** Writes a part of the Redis copy at `off`, after what comes before it; false as `reach`'s. */
  const deliver = async (off: number, data: Buffer): Promise<boolean> => {
    if (!(await reach(off, data))) return false;
    const from = pos - off;
    if (from < data.length) await written(from > 0 ? data.subarray(from) : data);
    pos = Math.max(pos, off + data.length);
    return true;
  };
  // Once a run has ended its live stream is replaced by the kept tail (Keys.taskOutputKept): what of it lies
  // past what was written here, when it is the run this reader follows (an older run's tail, while a new run
  // has not streamed yet, is not). Undefined: nothing kept; false as `reach`'s.
  const writeKept = async (): Promise<boolean | undefined> => {
    const tail = await redis(ctx => readKeptOutput(ctx, id, run));
    if (!tail) return undefined;
    if (!current(tail.ep)) return true;
    return deliver(tail.start, tail.data);
  };
  /** The ended run's output past what the Redis copy held (JTM_OUTPUT_KEEP_BYTES=0, a copy cut short). */
  const writeRest = async (): Promise<void> => {
    if (hasEnded(view) && view.bytes !== undefined) await reach(view.bytes, undefined);
  };
  for (;;) {
    signal?.throwIfAborted();
    // Following: the status, the run and its file, in one read before the output's. A final status read first
    // means that everything of the output (written before it) is read next.
    if (follow) {
      const [statusText, runText, file, bytes, mtime, notFollowed] = await redis(ctx =>
        ctx.redis.hmget(
          ctx.keys.task(id),
          'status',
          'run_token',
          'stdout_file',
          'output_bytes',
          'output_mtime',
          'output_unfollowed',
        ),
      );
      // The record gone while it was followed: Redis lost its data (a flush, eviction, a restart without AOF).
      // No end: taken for one, the follow ended 0 with the output cut short (adversary 24 F4); and what the
      // stream holds now may be a stopping run's last writes into a stream made anew, past a hole.
      if (statusText === null) throw new TaskRecordLostError(id, delivered);
      const status = Number(statusText);
      unfollowed = notFollowed === '1';
      view = {
        status,
        file: file ?? submittedFile(record),
        bytes: numberOf(bytes),
        mtime: numberOf(mtime),
      };
      // A new run starts its output over (its start dropped the earlier run's stream and tail): from its own
      // start, with nothing of the earlier run's offsets. Bytes already written cannot be taken back: say so.
      const now = runText ?? undefined;
      if (now !== undefined && now !== run) {
        if (run !== undefined) startOver('run again');
        run = now;
        pos = 0;
        epoch = 0;
        last = undefined;
        holding = undefined;
      }
    }
    const after = last === undefined ? '-' : `(${last}`;
    const entries = await redis(ctx => ctx.redis.xrangeBuffer(ctx.keys.taskOutput(id), after, '+'));
    // Parts of an output that has started over since (ep): a reader that gets them in the same read as the new
    // start skips them, as the file no longer holds them (a follower that starts after a truncation gets the
    // file as it stands).
    const parts = entries.map(([entryId, fields]) => ({ entryId, ...outputEntry(fields) }));
    current(parts.reduce((most, p) => Math.max(most, p.ep), 0));
    let held = false;
    for (const { entryId, data, off, ep } of parts) {
      if (!current(ep)) {
        last = entryId.toString('latin1');
        continue;
      }
      if (!(await deliver(off, data))) {
        held = true;
        break;
      }
      last = entryId.toString('latin1');
    }
    if (!follow) {
      // Nothing streaming: an ended run's kept tail (final, or given back and waiting to run again).
      if (last === undefined) await writeKept();
      await writeRest();
      return report();
    }
    // A run that ended while this followed it (given back, or about to be recorded final): the end of its
    // output is in the kept tail now, no longer in the stream.
    if (!held && entries.length === 0 && (await writeKept()) === false) held = true;
    if (!held && (view.status === undefined || hasEnded(view))) {
      await writeRest();
      return report();
    }
    await sleep(held ? HOLD_POLL_MS : POLL_MS, undefined, { signal }).catch((err: unknown) => {
      throw signal?.aborted ? signal.reason : err;
    });
  }
}

/** Runs one read of a reader's on Redis: on the task's shard, through whichever connection serves now. */
type RedisRead = <T>(read: (ctx: JtmContext) => Promise<T>) => Promise<T>;

/**
 * How a reader reaches Redis. One context: each read on it, failing as it fails. A reconnecting source: a read
 * that fails for want of Redis (a reset, a restart, Redis silent for JTM_CONNECT_TIMEOUT) once this reader has
 * reached Redis is made again on a new connection, pauses doubling to 1 s, until it is answered or Redis has been
 * lost for `retryMs` (then its error is thrown, as before). One warning when Redis is lost, one when it answers
 * again. Reached: a read of this follower's was answered, or a connection it opened had been made before it
 * failed (a reset at the handshake: `jtm logs --follow` exited 255 "Connection is closed." when that came in its
 * first second, adversary 28 F7), or the source says so (`reached`). A follower that never reached Redis (refused,
 * nothing answering), or whose only try was on a connection opened before it (the API's client, its Redis gone
 * since), fails at once, as every command does.
 */
function redisAccess(
  from: OutputSource,
  id: number,
  signal: AbortSignal | undefined,
  delivered: () => number,
): RedisRead {
  if (!('source' in from)) {
    const ctx = forTask(from, id);
    return read => read(ctx);
  }
  const { source, logger, retryMs } = from;
  let reached = from.reached ?? false;
  /** When Redis was lost: the first failure since it last answered (undefined: it answers). */
  let lostAt: number | undefined;
  return async read => {
    for (let pause = FIRST_RETRY_PAUSE_MS; ; pause = Math.min(pause * 2, MAX_RETRY_PAUSE_MS)) {
      try {
        const value = await withContext(source, ctx => read(forTask(ctx, id)));
        if (lostAt !== undefined) {
          const bytes = delivered();
          logger.warn(
            { task: id, lost_ms: Date.now() - lostAt, delivered_bytes: bytes },
            `Redis answers again: task ${id}'s output resumes after the ${bytes} bytes already printed`,
          );
        }
        lostAt = undefined;
        reached = true;
        return value;
      } catch (err) {
        // Closed meanwhile (the API's close()): the follow ends as closed, not as Redis unreachable.
        if (signal?.aborted) throw signal.reason;
        // A connection this follower opened that was made, then failed (reset at its handshake), reached Redis.
        if (err instanceof RedisUnavailableError && err.reached) reached = true;
        if (!reached || !isConnectionError(err)) throw err;
        const now = Date.now();
        const first = lostAt === undefined;
        lostAt ??= now;
        // Tried again until the bound has passed, the last try at it: an outage as long as the bound is ridden out.
        const left = lostAt + retryMs - now;
        if (left <= 0) throw err;
        if (first) {
          const bytes = delivered();
          logger.warn(
            { task: id, err: toError(err).message, delivered_bytes: bytes, retry_ms: retryMs },
            `lost Redis while following task ${id}'s output: connecting again for up to ${retryMs / 1000} s (JTM_FOLLOW_RETRY), to go on after the ${bytes} bytes already printed`,
          );
        }
        await sleep(Math.min(pause, left), undefined, { signal }).catch((e: unknown) => {
          throw signal?.aborted ? signal.reason : e;
        });
      }
    }
  };
}

/** What the record says of the run a reader reads (TaskRecord's fields of the same names). */
interface RunView {
  status: number | undefined;
  file: string | undefined;
  bytes: number | undefined;
  mtime: number | undefined;
}

function viewOf(r: TaskRecord): RunView {
  return {
    status: r.status,
    file: r.stdout_file ?? submittedFile(r),
    bytes: r.output_bytes,
    mtime: r.output_mtime,
  };
}

/**
 * The stdout file a task named at submit (every Cromwell call names one), when it is a plain path: the worker
 * records where stdout went a second into the run, and a failed write of that left a follower's gaps waiting
 * for it and then reported, though the bytes were in this file (review of s15). Not with `$VARS` (the worker
 * expands them). A file that is not the run's is refused by the reader's check of its bytes.
 */
function submittedFile(r: TaskRecord): string | undefined {
  return r.stdout !== undefined && isAbsolute(r.stdout) && !r.stdout.includes('$') ? r.stdout : undefined;
}

function hasEnded(view: RunView): boolean {
  return view.status !== undefined && isFinal(view.status);
}

function numberOf(text: string | null | undefined): number | undefined {
  if (text === null || text === undefined || text === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) ? n : undefined;
}

/**
 * The kept tail of a task's ended run (Keys.taskOutputKept) and where it starts in the output, or undefined:
 * none, or another run's than `run` (the run token a reader follows; undefined: any).
 */
export async function readKeptOutput(
  ctx: JtmContext,
  id: number,
  run: string | undefined,
): Promise<{ data: Buffer; start: number; ep: number } | undefined> {
  const [data, off, keptRun, ep] = await ctx.redis.hmgetBuffer(
    ctx.keys.taskOutputKept(id),
    'data',
    'off',
    'run',
    'ep',
  );
  if (!data) return undefined;
  if (run !== undefined && keptRun && keptRun.toString('latin1') !== run) return undefined;
  return { data, start: Number(off?.toString('latin1') ?? 0), ep: Number(ep?.toString('latin1') ?? 0) };
}

/**
 * A stream entry of a task's output (Keys.taskOutput): its bytes, their offset in the output, and how many times
 * the output had started over when it was written (`ep`, 0 before the first time).
 */
export function outputEntry(fields: Buffer[]): { data: Buffer; off: number; ep: number } {
  let data: Buffer = Buffer.alloc(0);
  let off = 0;
  let ep = 0;
  for (let i = 0; i + 1 < fields.length; i += 2) {
    const name = fields[i]?.toString('latin1');
    const value = fields[i + 1] as Buffer;
    if (name === 'data') data = value;
    else if (name === 'off') off = Number(value.toString('latin1'));
    else if (name === 'ep') ep = Number(value.toString('latin1'));
  }
  return { data, off, ep };
}

/**
 * What a follower that delivered what it could must still say (the CLI exits 3 with it, the API rejects with it):
 * some bytes were nowhere, the output started over, or it was never kept. Undefined: every byte was delivered.
 */
export function followFailure(id: number, report: OutputReport): JtmError | undefined {
  if (report.gaps.length > 0) return new OutputGapError(id, report.gaps);
  if (report.restarts.length > 0) return new OutputRestartedError(id, report.restarts);
  if (report.unfollowed !== undefined) return new OutputNotFollowedError(id, report.unfollowed);
  return undefined;
}

/**
 * Writes the task's stdout file when it is here, whole and readable: true; false when it is not (the Redis copy
 * serves, and the parts it lacks are tried again from the file, which says why it cannot be read).
 */
async function copyFile(
  path: string | undefined,
  ended: { output_bytes?: number; output_mtime?: number },
  write: (chunk: Buffer) => void | Promise<void>,
): Promise<boolean> {
  const { output_bytes: bytes, output_mtime: mtime } = ended;
  if (!path || bytes === undefined) return false;
  let chunks: AsyncIterable<unknown>;
  try {
    const st = await stat(path);
    // Rewritten since (another task naming the same file, after this one): the Redis copy is this task's.
    if (!st.isFile() || st.size !== bytes || (mtime !== undefined && st.mtimeMs !== mtime)) return false;
    if (bytes === 0) return true;
    chunks = createReadStream(path, { end: bytes - 1 });
  } catch {
    return false;
  }
  // A failure of `write` is the caller's (its reader gone, a full disk), never a reason to fall back to the
  // Redis copy: that wrote the output's tail after the part already written.
  let wrote = false;
  try {
    for await (const chunk of chunks) {
      wrote = true;
      await write(chunk as Buffer);
    }
  } catch (err) {
    if (wrote) throw err;
    return false;
  }
  return true;
}
