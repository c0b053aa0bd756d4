import { asJtmError } from '../../errors.js';
import { redisLocation } from '../../redis/location.js';
import { checkAlive, type Aliveness } from '../../tasks/query-task.js';
import { oneLine } from '../error-report.js';
import { resolveTaskId } from '../resolve-task-id.js';
import type { CommandSession, TaskIdInput } from '../session.js';

/** `jtm isalive`: yes (exit 0), no (exit 1), or unknown (exit 0) when Redis stays unreachable. */
export async function runIsAlive(
  s: CommandSession,
  { flags, args }: TaskIdInput,
): Promise<{ task_id: number; alive: Aliveness }> {
  const id = resolveTaskId(flags.task_id, args.id);
  // One line in the words of every other Redis failure, as isalive's `unknown` for a config file at fault says
  // it (settings.ts): it was a pino JSON line saying "Redis unreachable" also for a Redis that answered BUSY
  // (adversary 34 L2). The cause is named: "unreachable" alone hid a REDIS_URL naming a replica (34 H2).
  const alive = await checkAlive(s, id, s.config.isaliveRetryMs, err => {
    const why = oneLine(asJtmError(err, redisLocation(s.config)).message);
    process.stderr.write(`jtm isalive: ${why}: answering unknown (exit 0)\n`);
  });
  s.print(`${alive}\n`);
  if (alive === 'no') process.exitCode = 1;
  return { task_id: id, alive };
}
