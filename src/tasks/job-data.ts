import { InvalidInputError } from '../errors.js';
import { maskUrl } from '../redis/location.js';

export type { JobSource, TaskJobData } from '../store/run-spec.js';
export { jobDataFromRecord } from '../store/run-spec.js';

/**
 * What a pool queue's BullMQ job carries: the task id alone. The record is the one copy of the task's spec;
 * the worker gets what it needs to run the task (TaskJobData) from the start-task script it runs anyway. A
 * small job keeps BullMQ's job hash compact (listpack), which makes adding and finishing it cheaper.
 */
export interface TaskJob {
  id: number;
}

export const TASK_JOB_NAME = 'task';

/** Exported for the create script alone, which must find a new id's job key free (TaskStore.createMany). */
export const JOB_ID_PREFIX = 'task-';
const JOB_ID = /^task-([1-9]\d{0,15})$/;

/**
 * BullMQ job id of a task (BullMQ refuses integer custom ids): adding the same task twice is a no-op.
 * This and taskIdOfJob are the only places that know the format: build and parse job ids through them.
 */
export function jobIdOf(taskId: number): string {
  return `${JOB_ID_PREFIX}${taskId}`;
}

/** The task id a job id stands for, or undefined when the job is not a task's (foreign or malformed id). */
export function taskIdOfJob(jobId: string | undefined): number | undefined {
  const m = jobId === undefined ? null : JOB_ID.exec(jobId);
  const id = m ? Number(m[1]) : NaN;
  return Number.isSafeInteger(id) ? id : undefined;
}

/**
 * A task id as a person gives it (`-tid 5`, a URL's `?id=5`): a positive safe integer in digits, spaces around
 * it aside. The CLI and the dashboard read ids through this alone, so they refuse the same text (`0`, `-1`,
 * `5x`, 2^53) with the same message.
 */
export function taskIdOfText(raw: string): number {
  const text = raw.trim();
  const id = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(id) || id < 1) {
    // A URL given where the id goes (`jtm status redis://u:pw@h`, --redis-url forgotten) is shown masked: its
    // password was printed (adversary 42 L5).
    const shown = /@|:\/\//.test(raw) ? maskUrl(raw) : raw;
    throw new InvalidInputError(`invalid task id ${JSON.stringify(shown)}: expected a positive integer`);
  }
  return id;
}

/**
 * Job options shared by submit and the manager's re-enqueue: the job id is derived from the task id
 * (idempotent add). The retention counts are plain numbers (BullMQ's short form of `{ count }`): BullMQ
 * packs every job's options, and a flat object packs faster in a bulk submit.
 */
export function taskJobOptions(id: number): {
  jobId: string;
  removeOnComplete: number;
  removeOnFail: number;
} {
  return { jobId: jobIdOf(id), removeOnComplete: KEEP_COMPLETED_JOBS, removeOnFail: KEEP_FAILED_JOBS };
}

/**
 * Finished jobs BullMQ keeps per pool queue (for bull-board's lists): the task record, not the job, is what
 * outlives a task (status, logs, report read the record), so only the latest few are kept; each one kept
 * costs Redis memory that no JTM command reads.
 */
export const KEEP_COMPLETED_JOBS = 100;
export const KEEP_FAILED_JOBS = 1000;
