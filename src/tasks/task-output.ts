import type { JtmContext } from '../context.js';
import { TaskNotFoundError } from '../errors.js';
import { isFinal } from './status.js';

/**
 * A task's output as its worker streamed it to Redis (capped to the most recent part of long outputs).
 * With `follow`, keeps writing new output until the task has ended.
 */
export async function streamTaskOutput(
  ctx: JtmContext,
  id: number,
  write: (chunk: string) => void,
  follow: boolean,
): Promise<void> {
  if (!(await ctx.redis.exists(ctx.keys.task(id)))) throw new TaskNotFoundError(id);
  const key = ctx.keys.taskOutput(id);
  let last = '-';
  for (;;) {
    const entries = await ctx.redis.xrange(key, last === '-' ? '-' : `(${last}`, '+');
    for (const [entryId, fields] of entries) {
      const i = fields.indexOf('data');
      if (i >= 0) write(fields[i + 1] as string);
      last = entryId;
    }
    if (!follow) return;
    const status = await ctx.tasks.status(id);
    if (status === undefined || isFinal(status)) {
      // One more read: the worker flushes its last output just before it records the final status.
      if (entries.length === 0) return;
      continue;
    }
    await new Promise(r => setTimeout(r, 500));
  }
}
