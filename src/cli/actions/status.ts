import {
  getTaskDetails,
  getTaskStatus,
  type StatusAnswer,
  type TaskDetails,
} from '../../tasks/query-task.js';
import { isActive } from '../../tasks/status.js';
import { resolveTaskId } from '../resolve-task-id.js';
import type { CommandSession, TaskIdInput } from '../session.js';

/** `jtm status`: the status name (exit 0 while active, 1 otherwise); with --json the whole record. */
export async function runStatus(
  s: CommandSession,
  { flags, args }: TaskIdInput,
): Promise<StatusAnswer | TaskDetails> {
  const id = resolveTaskId(flags.task_id, args.id);
  const ctx = await s.context();
  if (s.json) {
    const details = await getTaskDetails(ctx, id).catch(() => undefined);
    if (!details || !isActive(details.status)) process.exitCode = 1;
    return details ?? (await getTaskStatus(ctx, id));
  }
  const answer = await getTaskStatus(ctx, id);
  s.print(`${answer.status}\n`);
  if (!answer.active) process.exitCode = 1;
  return answer;
}
