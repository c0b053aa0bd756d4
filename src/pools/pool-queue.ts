import { Queue } from 'bullmq';

import type { JtmContext } from '../context.js';

/**
 * Length BullMQ trims each queue's events stream to (its `streams.events.maxLen`, stored in the queue's meta
 * hash by every Queue opened here). JTM reads no BullMQ event (no QueueEvents: the task record and its
 * history are the source of truth), and BullMQ's default of 10,000 events cost more Redis memory per queue
 * than the records of the tasks themselves. Trimming is approximate (whole stream nodes of 100 entries).
 */
export const QUEUE_EVENTS_MAX_LEN = 100;

/**
 * The BullMQ queue of a pool, on the context's connection (closing it leaves the connection open). The
 * payload type is the caller's: src/tasks' `openPoolQueue` gives it the task payload, while a reader of the
 * counts alone (list-pools) needs none and so does not depend on src/tasks. Every queue is opened with the
 * same events-stream cap, whoever opens it.
 */
export function openQueueOf<T>(ctx: JtmContext, pool: string): Queue<T> {
  const queue = new Queue<T>(ctx.keys.poolQueue(pool), {
    connection: ctx.redis,
    prefix: ctx.keys.queuePrefix,
    skipVersionCheck: true,
    streams: { events: { maxLen: QUEUE_EVENTS_MAX_LEN } },
  });
  // A queue re-emits its connection's errors; with no listener BullMQ printed them itself, a stack on stderr
  // (`write ECONNRESET` through Pipeline/evalsha: adversary 22 M4). They reach the caller through the commands
  // that fail, and the connection's own listener logs them.
  queue.on('error', () => {});
  return queue;
}
