import { checkAlive, type Aliveness } from '../../tasks/query-task.js';
import { resolveTaskId } from '../resolve-task-id.js';
import type { CommandSession, TaskIdInput } from '../session.js';

/** `jtm isalive`: yes (exit 0), no (exit 1), or unknown (exit 0) when Redis stays unreachable. */
export async function runIsAlive(
  s: CommandSession,
  { flags, args }: TaskIdInput,
): Promise<{ task_id: number; alive: Aliveness }> {
  const id = resolveTaskId(flags.task_id, args.id);
  // The cause is logged with it: "Redis unreachable" alone did not say that REDIS_URL named a replica (adversary 34 H2).
  const alive = await checkAlive(s, id, s.config.isaliveRetryMs, err =>
    s.logger.warn(
      { task: id, err: err instanceof Error ? err.message : String(err) },
      'Redis unreachable: answering unknown (exit 0)',
    ),
  );
  s.print(`${alive}\n`);
  if (alive === 'no') process.exitCode = 1;
  return { task_id: id, alive };
}
