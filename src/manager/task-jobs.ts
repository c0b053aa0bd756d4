import type { Queue } from 'bullmq';

import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import {
  jobDataFromRecord,
  jobIdOf,
  TASK_JOB_NAME,
  taskJobOptions,
  type TaskJobData,
} from '../tasks/job-data.js';
import { openPoolQueue } from '../tasks/pool-queue.js';

/**
 * Keeps BullMQ's view of a task's job in step with its record when the manager changes the record.
 * BullMQ's own stalled checker runs only inside Workers of the same queue, and only after the lock of a
 * dead worker expires; the manager does not wait for it. Token '0' tells BullMQ's scripts not to check the
 * lock (the owner is dead); the next worker that fetches the job writes its own lock over the stale one.
 */
export class TaskJobs {
  private readonly queues = new Map<string, Queue<TaskJobData>>();

  constructor(private readonly ctx: JtmContext) {}

  queue(pool: string): Queue<TaskJobData> {
    let q = this.queues.get(pool);
    if (!q) {
      q = openPoolQueue(this.ctx, pool);
      this.queues.set(pool, q);
    }
    return q;
  }

  /**
   * Makes sure the task's job will be delivered again: an active job (its worker is dead) goes back to
   * wait; a missing or finished one is added anew with the same job id. Returns what it did.
   */
  async redeliver(pool: string, taskId: number): Promise<'moved' | 'added' | 'queued'> {
    const q = this.queue(pool);
    const jobId = jobIdOf(taskId);
    const state = await q.getJobState(jobId);
    if (state === 'active') {
      const job = await q.getJob(jobId);
      if (job) {
        await job.moveToWait('0');
        return 'moved';
      }
    }
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children')
      return 'queued';
    if (state === 'completed' || state === 'failed') await q.remove(jobId);
    const record = await this.ctx.tasks.get(taskId);
    if (!record) return 'queued';
    await q.add(TASK_JOB_NAME, jobDataFromRecord(record), taskJobOptions(taskId));
    return 'added';
  }

  /** Takes the task's job out of delivery: waiting ones are removed, an active one (dead owner) is failed. */
  async end(pool: string, jobId: string, reason: string): Promise<void> {
    const q = this.queue(pool);
    try {
      const state = await q.getJobState(jobId);
      if (state === 'active') {
        const job = await q.getJob(jobId);
        await job?.moveToFailed(new Error(reason), '0');
      } else if (state !== 'completed' && state !== 'failed' && state !== 'unknown') {
        await q.remove(jobId);
      }
    } catch (err) {
      // The record is already final; a worker that still meets this job skips it (start-task guard).
      this.ctx.logger.debug({ err: toError(err).message, pool, jobId }, 'job not ended');
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map(q => q.close()));
    this.queues.clear();
  }
}
