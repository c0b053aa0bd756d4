import { withContextRetrying, type JtmContext } from '../../context.js';
import { isConnectionError } from '../../errors.js';
import {
  getTaskDetails,
  getTaskStatus,
  type StatusAnswer,
  type TaskDetails,
} from '../../tasks/query-task.js';
import { isActive } from '../../tasks/status.js';
import { resolveTaskId } from '../resolve-task-id.js';
import type { CommandSession, TaskIdInput } from '../session.js';

/**
 * `jtm status`: the status name (exit 0 while active, 1 otherwise); with --json the whole record. A read: a
 * connection reset (a Redis restart, a dropped NAT entry) is tried again on a new connection within
 * JTM_CONNECT_TIMEOUT, as isalive does within its own window; an unreachable Redis still ends it within that bound
 * (exit 255). Once, it exited 255 at every reset (adversary 31 F6: 15 of 32 under a CLIENT KILL every 10 ms).
 */
export async function runStatus(
  s: CommandSession,
  { flags, args }: TaskIdInput,
): Promise<StatusAnswer | TaskDetails> {
  const id = resolveTaskId(flags.task_id, args.id);
  const read = <T>(fn: (ctx: JtmContext) => Promise<T>): Promise<T> =>
    withContextRetrying(s, fn, s.config.connectTimeoutMs);
  if (s.json) {
    // Details that cannot be read (not a task's record) fall back to the plain answer; Redis unreachable is tried again.
    const details = await read(async ctx =>
      getTaskDetails(ctx, id).catch((err: unknown) => {
        if (isConnectionError(err)) throw err;
        return undefined;
      }),
    );
    if (!details || !isActive(details.status)) process.exitCode = 1;
    return details ?? (await read(async ctx => getTaskStatus(ctx, id)));
  }
  const answer = await read(async ctx => getTaskStatus(ctx, id));
  s.print(`${answer.status}\n`);
  if (!answer.active) process.exitCode = 1;
  return answer;
}
