import { Queue } from 'bullmq';

import type { JtmContext } from '../context.js';
import type { TaskJobData } from './job-data.js';

/** The BullMQ queue of a pool, on the context's connection (closing it leaves the connection open). */
export function openPoolQueue(ctx: JtmContext, pool: string): Queue<TaskJobData> {
  return new Queue<TaskJobData>(ctx.keys.poolQueue(pool), {
    connection: ctx.redis,
    prefix: ctx.keys.queuePrefix,
    skipVersionCheck: true,
  } as ConstructorParameters<typeof Queue>[1]);
}
