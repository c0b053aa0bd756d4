import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { runWorkerCommand } from '../src/cli/actions/worker.js';
import type { LogLevel } from '../src/config.js';

export default class Worker extends BaseCommand<typeof Worker> {
  static override description = `manual (default): runs here, taking tasks of the pool until stopped. SIGTERM/SIGINT stop it gracefully: it takes no new task, running ones get --shutdown-grace to finish, then are killed and given back to the queue. dynamic without -j: writes a Slurm batch script that starts -nwpn workers per node and submits it with sbatch, printing the Slurm job id (--dry-run prints the script instead).`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> -p small --slots 4',
    'JTM_SITE_CONFIG=examples/sites.json <%= config.bin %> <%= command.id %> -wt dynamic -cl perlmutter -p small -t 01:00:00 -c 4 -m 10G -N 1 -nwpn 2 --dry-run',
  ];
  static override flags = {
    pool_name: Flags.string({ char: 'p', description: 'pool to take tasks from (also -tp)' }),
    worker_type: Flags.option({
      options: ['manual', 'dynamic'] as const,
      default: 'manual',
      description: 'manual, or dynamic (Slurm) (-wt)',
    })(),
    slurm_job_id: Flags.integer({ char: 'j', description: 'Slurm job id (set by the batch script)', min: 0 }),
    cluster: Flags.string({ description: 'site profile (-cl)' }),
    job_time: Flags.string({ char: 't', description: 'wall time hh:mm:ss of the allocation' }),
    cpus_per_task: Flags.integer({ char: 'c', description: 'cores per worker', min: 1 }),
    mem: Flags.string({ char: 'm', description: 'memory per node, e.g. 10G' }),
    mem_per_cpu: Flags.string({ description: 'memory per cpu (-mc)' }),
    nnodes: Flags.integer({ char: 'N', description: 'nodes per Slurm job', min: 1 }),
    num_worker_per_node: Flags.integer({ description: 'workers per node (-nwpn)', min: 1 }),
    constraint: Flags.string({ char: 'C', description: 'Slurm constraint' }),
    qos: Flags.string({ char: 'q', description: 'Slurm QOS' }),
    charging_account: Flags.string({ char: 'A', description: 'Slurm account' }),
    partition: Flags.string({ char: 'P', description: 'Slurm partition' }),
    worker_id: Flags.string({ description: 'worker id (-wi); default <host>-<pid>-<random>' }),
    heartbeat_interval: Flags.string({ description: 'heartbeat period (-hb), e.g. 2s; 500ms to 10m' }),
    log_dir: Flags.string({ description: 'log directory (-ld)' }),
    job_script_dir_name: Flags.string({ description: 'where batch scripts and Slurm logs go (-jd)' }),
    dry_run: Flags.boolean({ description: 'print the batch script, submit nothing (-dr)' }),
    clone_time_rate: Flags.string({ hidden: true, description: 'obsolete (-ctr)' }),
    // The original's worker flags that have no effect here, accepted so that an old launch line starts
    // (src/cli/argv.ts): -to (exit when the manager's heartbeats stop: workers do not depend on a manager),
    // -ct (clone time), -nw (workers to clone), -J (the Slurm job name: the manager names its jobs).
    manager_timeout: Flags.string({ hidden: true, description: 'obsolete (-to): ignored' }),
    clone_time: Flags.string({ hidden: true, description: 'obsolete (-ct): ignored' }),
    num_workers: Flags.string({ hidden: true, description: 'obsolete (-nw): ignored' }),
    job_name: Flags.string({ hidden: true, description: 'obsolete (-J): ignored' }),
    zerofile: Flags.boolean({ hidden: true, description: 'accept empty output files for every task (-zf)' }),
    // The original JTM's -r (log each heartbeat): accepted so that old scripts still start, but hidden, as it
    // does nothing (the resource samples are in `jtm resource-log`).
    show_resource_log: Flags.boolean({ char: 'r', hidden: true, description: 'obsolete (-r): ignored' }),
    slots: Flags.integer({
      description: 'tasks run at once by this worker (1 to 4096)',
      default: 1,
      min: 1,
      max: 4096,
    }),
    lifetime: Flags.string({
      description: 'end of life without Slurm, e.g. 2h or hh:mm:ss: drains 30 s before, exits 0 at it',
    }),
    'idle-timeout': Flags.string({ description: 'exit after this long without a task, e.g. 10m' }),
    'shutdown-grace': Flags.string({
      description: 'time running tasks get to finish on stop',
      default: '20s',
    }),
    'pin-cores': Flags.boolean({
      description:
        "dynamic: pin each worker of a node to its share of the node's cores (default: site profile pin_cores)",
      allowNo: true,
    }),
    'task-mem-limit': Flags.string({
      description:
        'memory limit of each task that names none (-m syntax, e.g. 4G); a dynamic worker defaults to -m / (nwpn × slots)',
    }),
    'sbatch-arg': Flags.string({ description: 'extra sbatch argument (repeatable)', multiple: true }),
  };
  static override summary = 'Run a worker for a pool, or submit Slurm workers (-wt dynamic).';

  protected override defaultLogLevel(): LogLevel {
    return 'info';
  }

  async run(): Promise<unknown> {
    return runWorkerCommand(this.session(), { flags: this.flags });
  }
}
