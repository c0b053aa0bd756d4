import type { JobJson, Queue } from 'bullmq';

import { TASK_JOB_NAME, jobIdOf, taskJobOptions, type TaskJob } from './job-data.js';

/**
 * Adds the BullMQ jobs of a batch of tasks (task i on queue `queueOf(i)`), in order, on one pipeline for the
 * whole batch, whatever the number of pools. Each job goes through BullMQ's own insert
 * (`addJobToTransaction`: its msgpack packing and its addStandardJob Lua script), so the stored job is
 * exactly the one `Queue.addBulk` writes (test/store/submit-jobs.test.ts compares them); what is skipped
 * is the per-job work of addBulk that a task job does not need: a Job object with its option
 * normalisation and validation, its JSON form, the telemetry span, and one ioredis pipeline per queue
 * (an ioredis pipeline copies every loaded script onto itself when built: ~0.25 ms each, and a batch of
 * 1,000 tasks over 50 pools built 50). In a cold `jtm submit -f` of 10,000 tasks that was a quarter of
 * the process's CPU.
 *
 * Every queue must have been opened on the same connection (one pipeline carries all of them).
 */
export async function addTaskJobs(
  ids: readonly number[],
  queueOf: (i: number) => Queue<TaskJob>,
): Promise<void> {
  if (ids.length === 0) return;
  const queues = new Set<Queue<TaskJob>>();
  for (let i = 0; i < ids.length; i++) queues.add(queueOf(i));
  // Each queue's meta hash (its events cap) is written once its connection is ready, chained before this
  // wait: on one connection it still reaches Redis before the queue's first job, as with addBulk.
  await Promise.all([...queues].map(async q => q.waitUntilReady()));
  const [first] = queues;
  const pipeline = (await (first as Queue<TaskJob>).backend.client).pipeline();
  // One timestamp for the batch (addBulk takes Date.now() per job, within the same millisecond or so).
  const timestamp = Date.now();
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i] as number;
    const queue = queueOf(i);
    const jobId = jobIdOf(id);
    // What BullMQ's Job constructor makes of the options addBulk is given: `attempts: 0` first.
    const job = {
      name: TASK_JOB_NAME,
      data: JSON.stringify({ id } satisfies TaskJob),
      opts: { attempts: 0, ...taskJobOptions(id) },
      timestamp,
    } as JobJson;
    // Queues the insert synchronously (the promise only settles with a pipeline's, so it is not awaited).
    void queue.backend.addJobToTransaction(pipeline, job, jobId, {}, queue.keys).catch(() => undefined);
  }
  const results = await pipeline.exec();
  if (!results) throw new Error('adding task jobs: pipeline discarded');
  for (const [err, reply] of results) {
    if (err) throw err;
    // BullMQ's scripts answer an error code as a negative number (e.g. a missing parent: none here).
    if (typeof reply === 'number' && reply < 0)
      throw new Error(`adding task jobs: BullMQ error code ${reply}`);
  }
}
