import { Queue } from 'bullmq';

import type { JtmContext } from '../context.js';

/**
 * The BullMQ queue of a pool, on the context's connection (closing it leaves the connection open). The
 * payload type is the caller's: src/tasks' `openPoolQueue` gives it the task payload, while a reader of the
 * counts alone (list-pools) needs none and so does not depend on src/tasks.
 */
export function openQueueOf<T>(ctx: JtmContext, pool: string): Queue<T> {
  return new Queue<T>(ctx.keys.poolQueue(pool), {
    connection: ctx.redis,
    prefix: ctx.keys.queuePrefix,
    skipVersionCheck: true,
  });
}
