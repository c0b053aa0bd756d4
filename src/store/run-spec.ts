import { RUN_FIELDS } from '../redis/scripts.js';
import type { TaskRecord } from './task-record.js';

// The run spec lives with the store (start-task returns it from the record); src/tasks/job-data.ts re-exports it.

/** What a worker needs to run a task: returned by start-task from the record (TaskStore.start). */
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

/** The record fields a worker runs a task from. */
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

/** What a worker runs a task from, out of its record (start-task's reply); unset fields are left out. */
export function jobDataFromRecord(r: JobSource): TaskJobData {
  const spec: TaskJobData = { id: r.id, command: r.command };
  // RUN_FIELDS: the fields start-task returns (command included, set above already).
  for (const k of RUN_FIELDS) if (r[k] !== undefined) Object.assign(spec, { [k]: r[k] });
  return spec;
}
