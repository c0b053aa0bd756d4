import type { JtmContext } from '../context.js';
import type { TaskRecord } from './task-record.js';

/**
 * When JTM itself ends a task whose Cromwell script could not write `rc` (timeout, lost worker with no
 * retries left, removed pool, command that could not start), it writes a non-abort code there so that
 * Cromwell fails or retries the call at once. (Implemented by the Cromwell work; until then a no-op.)
 */
export async function writeRcForEndedTask(ctx: JtmContext, record: TaskRecord): Promise<void> {
  void ctx;
  void record;
}
