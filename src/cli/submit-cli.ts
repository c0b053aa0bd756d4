import type { Config } from '../config.js';
import { InvalidInputError } from '../errors.js';
import { readInputFile } from '../input-file.js';
import { prepareTasks } from '../tasks/prepare-tasks.js';
import { dropUndefined } from '../fields.js';
import { parsePoolFields } from '../pool-spec.js';
import { taskFileEntries } from '../tasks/task-file.js';
import type { NewTask, TaskInput } from '../tasks/task-spec.js';

/** Submit's flags, with the original's names. */
export interface SubmitFlags {
  command?: string;
  task_file?: string;
  pool_name?: string;
  cluster?: string;
  job_time?: string;
  memory?: string;
  ncpu?: number;
  nnodes?: number;
  num_worker_per_node?: number;
  shared?: number;
  cromwell_job_id?: string;
  account?: string;
  constraint?: string;
  qos?: string;
  partition?: string;
  timeout?: string;
  'mem-limit'?: string;
  'rc-file'?: string;
  zerofile?: boolean;
}

/** Largest task file `submit -f` reads (documented in the README): bounds /dev/zero and endless pipes. */
export const MAX_TASK_FILE_BYTES = 64 * 1024 * 1024;

/** Validates every task before anything is written; bad input leaves nothing behind in Redis. */
export function tasksFromFlags(flags: SubmitFlags, config: Config, cwd: string): NewTask[] {
  if (flags.command !== undefined && flags.task_file !== undefined) {
    throw new InvalidInputError('give either -cmd/--command or -f/--task_file, not both');
  }
  let inputs: TaskInput[];
  // Where a refused entry of the file is (`tasks.jsonl:3: cpu must be …`): a file of 10,000 lines is not
  // searched by hand for the one with a quoted number.
  let where: ((i: number) => string) | undefined;
  if (flags.task_file !== undefined) {
    const text = readInputFile(flags.task_file, 'task file', MAX_TASK_FILE_BYTES);
    ({ inputs, where } = taskFileEntries(text, flags.task_file));
  } else if (flags.command !== undefined) {
    inputs = [{ command: flags.command }];
  } else {
    throw new InvalidInputError('no command given: use -cmd/--command or -f/--task_file');
  }
  // The same validation as a task file's pool object: one set of rules for flags and files.
  const poolFields = parsePoolFields(
    dropUndefined({
      cluster: flags.cluster,
      time: flags.job_time,
      mem: flags.memory,
      cpu: flags.ncpu,
      node: flags.nnodes,
      nwpn: flags.num_worker_per_node,
      shared: flags.shared,
      account: flags.account,
      constraint: flags.constraint,
      qos: flags.qos,
      partition: flags.partition,
    }),
  );
  return prepareTasks(
    inputs,
    {
      pool: flags.pool_name,
      poolFields,
      timeout: flags.timeout,
      memLimit: flags['mem-limit'],
      rcFile: flags['rc-file'],
      cromwellJobId: flags.cromwell_job_id,
      allowEmptyOutputs: flags.zerofile ? true : undefined,
      cwd,
    },
    config,
    where,
  );
}
