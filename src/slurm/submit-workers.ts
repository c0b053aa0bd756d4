import type { Config } from '../config.js';
import { SlurmError } from '../errors.js';
import type { Logger } from '../logger.js';

/** What `jtm worker -wt dynamic` asks of Slurm (the original's flag names). */
export interface DynamicWorkerRequest {
  pool_name?: string;
  cluster?: string;
  job_time?: string;
  cpus_per_task?: number;
  mem?: string;
  mem_per_cpu?: string;
  nnodes?: number;
  num_worker_per_node?: number;
  constraint?: string;
  qos?: string;
  charging_account?: string;
  partition?: string;
  worker_id?: string;
  job_script_dir_name?: string;
  dry_run?: boolean;
  'idle-timeout'?: string;
  'sbatch-arg'?: string[];
}

export interface SubmitWorkersResult {
  output: string;
  exitCode: number;
}

/** Writes and submits the batch script of dynamic workers (see the Slurm issue). */
export async function submitDynamicWorkers(
  request: DynamicWorkerRequest,
  config: Config,
  logger: Logger,
): Promise<SubmitWorkersResult> {
  void request;
  void config;
  void logger;
  throw new SlurmError('dynamic workers are not available yet');
}
