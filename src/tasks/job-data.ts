import type { TaskRecord } from '../store/task-record.js';

/** What a pool queue's BullMQ job carries: all a worker needs to run the task without reading the record. */
export interface TaskJobData {
  id: number;
  command: string;
  cwd?: string;
  stdout?: string;
  stderr?: string;
  output_files?: string;
  allow_empty_outputs?: boolean;
  timeout_ms?: number;
  /** Memory limit of the task, `-m` syntax normalised (`4G`, `500M`). */
  mem_limit?: string;
  /** Cromwell's rc file: a task over its memory limit flags Cromwell's memory retry next to it at once. */
  rc_file?: string;
}

export const TASK_JOB_NAME = 'task';

const JOB_ID_PREFIX = 'task-';
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

/** Job options shared by submit and the manager's re-enqueue: the job id is derived from the task id (idempotent add). */
export function taskJobOptions(id: number): {
  jobId: string;
  removeOnComplete: { count: number };
  removeOnFail: { count: number };
} {
  return { jobId: jobIdOf(id), removeOnComplete: { count: 1000 }, removeOnFail: { count: 5000 } };
}

/** The record fields a job carries. */
export type JobSource = Pick<
  TaskRecord,
  | 'id'
  | 'command'
  | 'cwd'
  | 'stdout'
  | 'stderr'
  | 'output_files'
  | 'allow_empty_outputs'
  | 'timeout_ms'
  | 'mem_limit'
  | 'rc_file'
>;

/** The job of a task, from its record (submit, and the manager when it re-adds a lost job). */
export function jobDataFromRecord(r: JobSource): TaskJobData {
  return {
    id: r.id,
    command: r.command,
    cwd: r.cwd,
    stdout: r.stdout,
    stderr: r.stderr,
    output_files: r.output_files,
    allow_empty_outputs: r.allow_empty_outputs,
    timeout_ms: r.timeout_ms,
    mem_limit: r.mem_limit,
    rc_file: r.rc_file,
  };
}
