import { RUN_FIELDS } from '../redis/scripts.js';
import type { TaskRecord } from './task-record.js';

// The run spec lives with the store (start-task returns it from the record); src/tasks/job-data.ts re-exports it.

/**
 * What a worker needs to run a task: the record fields start-task returns (RUN_FIELDS, with the id), typed
 * from the record itself so that the two cannot drift apart.
 */
export type TaskJobData = Pick<
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
  | 'host_deaths'
  | 'stop_givebacks'
>;

/** The record fields a worker runs a task from (the same fields). */
export type JobSource = TaskJobData;

/** What a worker runs a task from, out of its record (start-task's reply); unset fields are left out. */
export function jobDataFromRecord(r: JobSource): TaskJobData {
  const spec: TaskJobData = { id: r.id, command: r.command };
  // RUN_FIELDS: the fields start-task returns (command included, set above already).
  for (const k of RUN_FIELDS) if (r[k] !== undefined) Object.assign(spec, { [k]: r[k] });
  return spec;
}
