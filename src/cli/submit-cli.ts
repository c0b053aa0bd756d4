import type { Config } from '../config.js';
import type { JtmContext } from '../context.js';
import { InvalidInputError } from '../errors.js';
import { readInputFile } from '../input-file.js';
import { formatHms, parseDuration } from '../durations.js';
import { isDynamicSpec, resolvePoolCluster } from '../slurm/pool-cluster.js';
import { END_OF_LIFE_MARGIN_MS } from '../worker/worker-options.js';
import { loadSiteConfig, type SiteConfig } from '../slurm/site-profiles.js';
import { submitTasks } from '../tasks/submit-task.js';
import {
  buildTask,
  parsePoolFields,
  parseTaskFile,
  type NewTask,
  type TaskInput,
} from '../tasks/task-spec.js';

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
  if (flags.task_file !== undefined) {
    const text = readInputFile(flags.task_file, 'task file', MAX_TASK_FILE_BYTES);
    inputs = parseTaskFile(text, flags.task_file);
  } else if (flags.command !== undefined) {
    inputs = [{ command: flags.command }];
  } else {
    throw new InvalidInputError('no command given: use -cmd/--command or -f/--task_file');
  }
  // The same validation as a task file's pool object: one set of rules for flags and files.
  const poolFields = parsePoolFields(
    stripUndefined({
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
  let site: SiteConfig | undefined;
  const loadSite = (): SiteConfig => (site ??= loadSiteConfig(config.siteConfigPath));
  const tasks = inputs.map(input =>
    buildTask(input, {
      pool: flags.pool_name,
      poolFields,
      timeout: flags.timeout,
      rcFile: flags['rc-file'],
      cromwellJobId: flags.cromwell_job_id,
      allowEmptyOutputs: flags.zerofile ? true : undefined,
      cwd,
      maxCommandBytes: config.maxCommandBytes,
    }),
  );
  return tasks.map(t => {
    const task = { ...t, poolSpec: resolvePoolCluster(t.poolSpec, loadSite) };
    checkFitsAllocation(task, config);
    return task;
  });
}

/**
 * A task whose time limit is longer than its dynamic pool's allocations would never start on any of them
 * and wait forever: refused at submit, where the user sees why.
 */
function checkFitsAllocation(t: NewTask, config: Config): void {
  if (!isDynamicSpec(t.poolSpec) || t.timeoutMs === undefined || !t.poolSpec.time) return;
  const allocationMs = parseDuration(t.poolSpec.time) + config.slurmTimeSlackMs;
  if (t.timeoutMs > allocationMs - END_OF_LIFE_MARGIN_MS) {
    throw new InvalidInputError(
      `time limit ${formatHms(t.timeoutMs)} does not fit in the allocations of pool ${t.pool} ` +
        `(${t.poolSpec.time} + JTM_SLURM_TIME_SLACK ${formatHms(config.slurmTimeSlackMs)}): raise -t or lower --timeout`,
    );
  }
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export async function submitFromCli(
  open: () => Promise<JtmContext>,
  flags: SubmitFlags,
  config: Config,
  cwd: string,
): Promise<number[]> {
  const tasks = tasksFromFlags(flags, config, cwd);
  return submitTasks(await open(), tasks);
}
