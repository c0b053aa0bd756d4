import type { Queue } from 'bullmq';

import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { jobIdOf, TASK_JOB_NAME, taskJobOptions, type TaskJob } from '../tasks/job-data.js';
import { openPoolQueue } from '../tasks/pool-queue.js';

/**
 * Keeps BullMQ's view of a task's job in step with its record when the manager changes the record.
 * BullMQ's own stalled checker runs only inside Workers of the same queue, and only after the lock of a
 * dead worker expires; the manager does not wait for it. An active job is moved only with the lock token of
 * the execution the manager decided about: BullMQ's script checks it atomically, so a job that another worker
 * has fetched since (a new lock) is never touched. Without that token, an active job is left to BullMQ's
 * stalled check.
 */
export class TaskJobs {
  private readonly queues = new Map<string, Queue<TaskJob>>();

  constructor(private readonly ctx: JtmContext) {}

  queue(pool: string): Queue<TaskJob> {
    let q = this.queues.get(pool);
    if (!q) {
      q = openPoolQueue(this.ctx, pool);
      this.queues.set(pool, q);
    }
    return q;
  }

  /**
   * Makes sure the task's job will be delivered again: an active job still locked by `lockToken` (the dead
   * execution's) goes back to wait; a missing or finished one is added anew with the same job id. An active
   * job under another lock, or a lapsed one, is left alone ('active'). Returns what it did.
   */
  async redeliver(
    pool: string,
    taskId: number,
    lockToken?: string,
  ): Promise<'moved' | 'added' | 'queued' | 'active'> {
    const q = this.queue(pool);
    const jobId = jobIdOf(taskId);
    const state = await q.getJobState(jobId);
    if (state === 'active') {
      const job = await q.getJob(jobId);
      if (!job) return 'active';
      if (!lockToken) return 'active';
      try {
        await job.moveToWait(lockToken);
        return 'moved';
      } catch (err) {
        this.ctx.logger.debug({ err: toError(err), pool, jobId }, 'job not moved: its lock changed');
        return 'active';
      }
    }
    if (state === 'waiting' || state === 'delayed' || state === 'prioritized' || state === 'waiting-children')
      return 'queued';
    if (state === 'completed' || state === 'failed') await q.remove(jobId);
    if ((await this.ctx.tasks.status(taskId)) === undefined) return 'queued';
    await q.add(TASK_JOB_NAME, { id: taskId }, taskJobOptions(taskId));
    return 'added';
  }

  /**
   * A job in none of its queue's lists (findStrandedJobs) made deliverable: its hash removed, the job added
   * again (an add with the id of an existing hash adds nothing). Not when BullMQ sees it in a state by now.
   */
  async readdStranded(pool: string, taskId: number): Promise<'added' | 'queued'> {
    const q = this.queue(pool);
    const jobId = jobIdOf(taskId);
    if ((await q.getJobState(jobId)) !== 'unknown') return 'queued';
    await this.ctx.redis.del(this.ctx.keys.poolJob(pool, jobId));
    await q.add(TASK_JOB_NAME, { id: taskId }, taskJobOptions(taskId));
    return 'added';
  }

  /**
   * Takes the task's job out of delivery: waiting ones are removed; an active one is failed only while it
   * holds `lockToken` (the dead execution's lock), else left to the worker or stalled check that meets it.
   */
  async end(pool: string, jobId: string, reason: string, lockToken?: string): Promise<void> {
    const q = this.queue(pool);
    try {
      const state = await q.getJobState(jobId);
      if (state === 'active') {
        const job = await q.getJob(jobId);
        if (lockToken) await job?.moveToFailed(new Error(reason), lockToken);
      } else if (state !== 'completed' && state !== 'failed' && state !== 'unknown') {
        await q.remove(jobId);
      }
    } catch (err) {
      // The record is already final; a worker that still meets this job skips it (start-task guard).
      this.ctx.logger.debug({ err: toError(err), pool, jobId }, 'job not ended');
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.queues.values()].map(q => q.close()));
    this.queues.clear();
  }
}
