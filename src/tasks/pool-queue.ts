import type { Queue } from 'bullmq';

import type { JtmContext } from '../context.js';
import { openQueueOf } from '../pools/pool-queue.js';
import type { TaskJob } from './job-data.js';

/** The BullMQ queue of a pool, typed with the task payload (closing it leaves the connection open). */
export function openPoolQueue(ctx: JtmContext, pool: string): Queue<TaskJob> {
  return openQueueOf<TaskJob>(ctx, pool);
}
