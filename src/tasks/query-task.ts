import { forTask, withContextRetrying, type ContextSource, type JtmContext } from '../context.js';
import { TaskNotFoundError } from '../errors.js';
import { isConnectionError } from '../redis/connection.js';
import { refuseReplica } from '../redis/replica-check.js';
import { isActive, statusName, type TaskStatusName } from './status.js';
import { stderrFileOf, type TaskRecord } from '../store/task-record.js';
import type { TaskEvent } from '../store/task-store.js';

export interface StatusAnswer {
  task_id: number;
  status: TaskStatusName;
  code: number;
  active: boolean;
}

/**
 * The status of a task, one HGET; an unknown id is `invalidtask` (-5), as the original — unless a replica said so
 * (refuseReplica: REDIS_UNAVAILABLE).
 */
export async function getTaskStatus(ctx: JtmContext, id: number): Promise<StatusAnswer> {
  const found = await forTask(ctx, id).tasks.status(id);
  if (found === undefined) await refuseReplica(ctx);
  const code = found ?? -5;
  return { task_id: id, status: statusName(code), code, active: isActive(code) };
}

export type TaskDetails = TaskRecord & { events: TaskEvent[] };

export async function getTaskDetails(ctx: JtmContext, id: number): Promise<TaskDetails> {
  const { tasks } = forTask(ctx, id);
  const found = await tasks.details(id);
  if (!found) {
    await refuseReplica(ctx);
    throw new TaskNotFoundError(id);
  }
  const stderrFile = stderrFileOf(found.record);
  return { ...found.record, ...(stderrFile ? { stderr_file: stderrFile } : {}), events: found.events };
}

export type Aliveness = 'yes' | 'no' | 'unknown';

/**
 * Whether a task is alive, for Cromwell's check-alive. Cromwell takes any non-zero exit as "dead" and
 * then fails the job, so a Redis that cannot be reached is retried for `retryMs`, and if it still
 * cannot be reached the answer is `unknown` (exit 0): the job is kept, and asked about again later. A `no` is
 * given only by a master (refuseReplica): a replica re-syncing after a failover answered `no` for live tasks.
 */
export async function checkAlive(
  src: ContextSource,
  id: number,
  retryMs: number,
  /** Told why, when the answer is `unknown` (the last failure: unreachable, loading, a replica, …). */
  onUnknown?: (err: unknown) => void,
): Promise<Aliveness> {
  try {
    return await withContextRetrying(
      src,
      async ctx => {
        const code = await forTask(ctx, id).tasks.status(id);
        if (code !== undefined && isActive(code)) return 'yes';
        await refuseReplica(ctx);
        return 'no';
      },
      retryMs,
    );
  } catch (err) {
    if (!isConnectionError(err)) throw err;
    onUnknown?.(err);
    return 'unknown';
  }
}
