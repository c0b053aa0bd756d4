import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { runSubmit } from '../src/cli/actions/submit.js';

export default class Submit extends BaseCommand<typeof Submit> {
  static override description = `Prints one line "JTM task ID <n>" per task once it is durably queued (Cromwell's job-id-regex reads it). A task file holds one JSON object, a JSON array of objects, or JSON lines: {"command", "output_dir", "output_files", "stdout", "stderr", "timeout", "mem_limit", "rc_file", "pool": {"name", "cluster", "time", "cpu", "mem", "node", "nwpn", "shared", "account", "constraint", "qos", "partition"}}. The command runs with /bin/bash -c, so quotes, pipes, redirections, $VARS and newlines work. Exit codes: 0 queued; 1 invalid input (nothing is written); 255 Redis unreachable.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> -cmd "echo hello > out.txt" -p small',
    '<%= config.bin %> <%= command.id %> -cmd "/bin/bash /path/execution/script" -p small -cl local -t 00:30:00 -c 4 -m 5',
    '<%= config.bin %> <%= command.id %> -f tasks.jsonl -p small',
  ];
  static override flags = {
    command: Flags.string({ description: 'shell command to run (also -cmd, -cr)' }),
    task_file: Flags.string({ char: 'f', description: 'JSON task file (object, array or JSON lines)' }),
    pool_name: Flags.string({
      char: 'p',
      description: 'pool to run on (required unless the task file names one)',
    }),
    cluster: Flags.string({ description: 'site profile of the pool (-cl), e.g. local' }),
    job_time: Flags.string({ char: 't', description: 'wall time of the pool allocation, hh:mm:ss' }),
    memory: Flags.string({ char: 'm', description: 'memory per node: GB as a number, or e.g. 10G' }),
    ncpu: Flags.integer({
      char: 'c',
      description: 'CPUs per node of the pool (Slurm --cpus-per-task), shared by its -nwpn workers',
      min: 1,
    }),
    nnodes: Flags.integer({ char: 'N', description: 'nodes of the pool', min: 1 }),
    num_worker_per_node: Flags.integer({ description: 'workers per node (-nwpn)', min: 1 }),
    shared: Flags.integer({
      char: 's',
      description: '0: per-workflow pool <pool>_<workflow uuid> (with -jid)',
      min: 0,
      max: 1,
    }),
    cromwell_job_id: Flags.string({ description: "Cromwell's job name (-jid)" }),
    account: Flags.string({ char: 'A', description: 'Slurm account' }),
    constraint: Flags.string({ char: 'C', description: 'Slurm constraint' }),
    qos: Flags.string({ char: 'q', description: 'Slurm QOS' }),
    partition: Flags.string({ char: 'P', description: 'Slurm partition' }),
    timeout: Flags.string({
      description: 'time limit of the task (e.g. 90s, 10m, hh:mm:ss); killed at the limit',
    }),
    'mem-limit': Flags.string({
      description:
        'memory limit of the task (-m syntax: GB as a number, or e.g. 4G, 500M); over it the task ends outofresource',
    }),
    'rc-file': Flags.string({ description: "Cromwell's rc file; written by JTM if it ends the task itself" }),
    zerofile: Flags.boolean({ description: 'accept empty output files (-zf)' }),
  };
  static override summary = 'Queue a task (or many) on a pool.';

  async run(): Promise<{ task_ids: number[] }> {
    return runSubmit(this.session(), { flags: this.flags });
  }
}
