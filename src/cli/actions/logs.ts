import { RedisUnavailableError } from '../../errors.js';
import { isConnectionError, redisLocation } from '../../redis/connection.js';
import { streamTaskOutput } from '../../tasks/task-output.js';
import { resolveTaskId } from '../resolve-task-id.js';
import type { CommandSession, TaskIdInput } from '../session.js';

/** The reader of stdout went away (`jtm logs | head`): the output stops there, and the command ends, exit 0. */
class ReaderGone extends Error {}

let readerGone = false;

/**
 * Writes bytes to stdout, waiting when the reader is slower (a 150 MB output is not held in memory). A reader
 * that closes the pipe (EPIPE) ends the writing: before, `jtm logs -tid N | head` waited for a 'drain' that
 * never came once the output was larger than the pipe's buffer, and never exited.
 */
function writeOut(chunk: Buffer): Promise<void> | void {
  if (readerGone) throw new ReaderGone();
  if (process.stdout.write(chunk)) return;
  return new Promise((resolve, reject) => {
    const settle = (): void => {
      process.stdout.off('drain', settle);
      process.stdout.off('error', settle);
      process.stdout.off('close', settle);
      if (readerGone) reject(new ReaderGone());
      else resolve();
    };
    process.stdout.on('drain', settle);
    process.stdout.on('error', settle);
    process.stdout.on('close', settle);
  });
}

function watchReader(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') readerGone = true;
  });
  process.stdout.on('close', () => (readerGone = true));
}

/** `jtm logs`: the task's stdout, byte for byte; with `follow`, until the task ends. */
export async function runLogs(
  s: CommandSession,
  { flags, args }: TaskIdInput & { flags: { follow?: boolean } },
): Promise<void> {
  const id = resolveTaskId(flags.task_id, args.id);
  const ctx = await s.context();
  watchReader();
  try {
    await streamTaskOutput(ctx, id, writeOut, flags.follow ?? false);
  } catch (err) {
    if (err instanceof ReaderGone) return;
    // Redis lost while following is Redis unavailable (255), as for every command, not invalid input.
    if (isConnectionError(err)) throw new RedisUnavailableError(redisLocation(s.config), err);
    throw err;
  }
}
