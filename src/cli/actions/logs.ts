import type { JtmContext } from '../../context.js';
import { JtmError, OutputWriteError, RedisUnavailableError } from '../../errors.js';
import { connectionFailure, isConnectionError } from '../../redis/connection.js';
import { followFailure, streamTaskOutput, type OutputReport } from '../../tasks/task-output.js';
import { resolveTaskId } from '../resolve-task-id.js';
import type { CommandSession, TaskIdInput } from '../session.js';

/** The reader of stdout went away (`jtm logs | head`): the output stops there, and the command ends, exit 0. */
class ReaderGone extends Error {}

/** How stdout failed, once it has: its reader gone (EPIPE), or another error (a full disk). */
let failed: Error | undefined;

function outputError(err: NodeJS.ErrnoException): Error {
  return err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED'
    ? new ReaderGone()
    : new OutputWriteError(err);
}

/**
 * Writes bytes to stdout, waiting when the reader is slower (a 150 MB output is not held in memory). A reader
 * that closes the pipe (EPIPE) ends the writing: before, `jtm logs -tid N | head` waited for a 'drain' that
 * never came once the output was larger than the pipe's buffer, and never exited. Any other failure (stdout
 * on a full disk: a stack trace before) is one line, exit 1.
 */
function writeOut(chunk: Buffer): Promise<void> | void {
  if (failed) throw failed;
  try {
    if (process.stdout.write(chunk)) return;
  } catch (err) {
    // A file or a device is written synchronously: its error is thrown here.
    throw (failed = outputError(err as NodeJS.ErrnoException));
  }
  return new Promise((resolve, reject) => {
    const settle = (): void => {
      process.stdout.off('drain', settle);
      process.stdout.off('error', settle);
      process.stdout.off('close', settle);
      if (failed) reject(failed);
      else resolve();
    };
    process.stdout.on('drain', settle);
    process.stdout.on('error', settle);
    process.stdout.on('close', settle);
  });
}

function watchOutput(): void {
  // oclif's own listener rethrows every stdout error but EPIPE, as an uncaught exception (a stack trace for
  // `jtm logs … > /dev/full`): this command answers for its stdout while it writes the output.
  process.stdout.removeAllListeners('error');
  process.stdout.on('error', (err: NodeJS.ErrnoException) => (failed ??= outputError(err)));
  process.stdout.on('close', () => (failed ??= new ReaderGone()));
}

/**
 * `jtm logs`: the task's stdout, byte for byte; with `follow`, until the task ends, and exit 3 when some of it was
 * in neither the Redis copy nor a stdout file readable here (OUTPUT_GAP), or when it started over after some of it
 * was printed (OUTPUT_RESTARTED).
 */
export async function runLogs(
  s: CommandSession,
  { flags, args }: TaskIdInput & { flags: { follow?: boolean } },
): Promise<void> {
  const id = resolveTaskId(flags.task_id, args.id);
  const follow = flags.follow ?? false;
  let ctx: JtmContext | undefined;
  try {
    ctx = await s.context();
  } catch (err) {
    // A follower that reached Redis rides out its loss, also at its very first connection: one reset at the
    // handshake, in a follower's first second, ended it 255 "Connection is closed." (adversary 28 F7). One that
    // never reached Redis (refused, nothing answering) fails at once, as every command; so does `logs` alone.
    if (!follow || !(err instanceof RedisUnavailableError && err.reached)) throw err;
  }
  watchOutput();
  let report: OutputReport;
  try {
    // A follower connects again when it loses Redis, for JTM_FOLLOW_RETRY: one reset ended an operator's
    // follow of hours (adversary 26 F5).
    const from = follow
      ? { source: s, logger: s.logger, retryMs: s.config.followRetryMs, reached: true }
      : ctx!;
    report = await streamTaskOutput(from, id, writeOut, follow);
  } catch (err) {
    if (err instanceof ReaderGone) return;
    // Redis lost while following (for good) is Redis unavailable (255), as for every command, not invalid input.
    if (isConnectionError(err) && !(err instanceof JtmError))
      throw await connectionFailure(ctx?.redis, s.config, err);
    throw err;
  }
  // A follower promised the whole output: one that could not deliver all of it, or delivered bytes the output no
  // longer holds (it started over), ends with exit 3, after the warnings that said where (without --follow, the
  // output so far is printed with them, exit 0).
  const failure = follow ? followFailure(id, report) : undefined;
  if (failure) throw failure;
}
