import { RedisUnavailableError } from '../../errors.js';
import { isConnectionError, redisLocation } from '../../redis/connection.js';
import { streamTaskOutput } from '../../tasks/task-output.js';
import { resolveTaskId } from '../resolve-task-id.js';
import type { CommandSession, TaskIdInput } from '../session.js';

/** Writes bytes to stdout, waiting when the reader is slower (a 150 MB output is not held in memory). */
function writeOut(chunk: Buffer): Promise<void> | void {
  if (process.stdout.write(chunk)) return;
  return new Promise(r => process.stdout.once('drain', () => r()));
}

/** `jtm logs`: the task's stdout, byte for byte; with `follow`, until the task ends. */
export async function runLogs(
  s: CommandSession,
  { flags, args }: TaskIdInput & { flags: { follow?: boolean } },
): Promise<void> {
  const id = resolveTaskId(flags.task_id, args.id);
  const ctx = await s.context();
  try {
    await streamTaskOutput(ctx, id, writeOut, flags.follow ?? false);
  } catch (err) {
    // Redis lost while following is Redis unavailable (255), as for every command, not invalid input.
    if (isConnectionError(err)) throw new RedisUnavailableError(redisLocation(s.config), err);
    throw err;
  }
}
