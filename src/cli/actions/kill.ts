import { parseDurationOr } from '../../durations.js';
import { killTaskRetrying, type KillResult } from '../../tasks/kill-task.js';
import { resolveTaskId } from '../resolve-task-id.js';
import type { CommandSession, TaskIdInput } from '../session.js';

/** `jtm kill`: ends a waiting task at once, or has its worker kill a running one (waits up to --wait). */
export async function runKill(
  s: CommandSession,
  { flags, args }: { flags: TaskIdInput['flags'] & { wait: string }; args: TaskIdInput['args'] },
): Promise<KillResult> {
  const id = resolveTaskId(flags.task_id, args.id);
  const waitMs = parseDurationOr(flags.wait, '--wait');
  const result = await killTaskRetrying(s, id, waitMs, s.config.killRetryMs);
  s.logger.info(result, 'kill');
  return result;
}
