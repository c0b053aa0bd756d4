import { parseDurationOr } from '../../durations.js';
import { isConnectionError } from '../../redis/connection.js';
import { retryWhileUnreachable } from '../../redis/retry-unreachable.js';
import { killTask, type KillResult } from '../../tasks/kill-task.js';
import { resolveTaskId } from '../resolve-task-id.js';
import type { CommandSession, TaskIdInput } from '../session.js';

/** `jtm kill`: ends a waiting task at once, or has its worker kill a running one (waits up to --wait). */
export async function runKill(
  s: CommandSession,
  { flags, args }: { flags: TaskIdInput['flags'] & { wait: string }; args: TaskIdInput['args'] },
): Promise<KillResult> {
  const id = resolveTaskId(flags.task_id, args.id);
  const waitMs = parseDurationOr(flags.wait, '--wait');
  // Retried while Redis is unreachable: Cromwell ignores kill's exit code, so a kill lost to a transient error
  // (a restart, a node so loaded that the connection times out) would leave the task running.
  const result = await retryWhileUnreachable(async () => {
    try {
      return await killTask(await s.context(), id, waitMs);
    } catch (err) {
      if (isConnectionError(err)) await s.resetContext();
      throw err;
    }
  }, s.config.killRetryMs);
  s.logger.info(result, 'kill');
  return result;
}
