import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { ignoredClusterFlag } from '../src/cli/legacy-flags.js';
import { countWorkers, type WorkerCount } from '../src/pools/count-workers.js';

export default class CheckWorker extends BaseCommand<typeof CheckWorker> {
  static override description = `Prints the number of live worker slots (from heartbeats), in one pool or in all. With --slurm, slots of requested Slurm allocations that are still pending are counted too. Exit codes: 0 if the count is above 0, else 1; 255 Redis unreachable.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> -p small',
    '<%= config.bin %> <%= command.id %>',
  ];
  static override flags = {
    pool_name: Flags.string({ char: 'p', description: 'pool (all pools when omitted)' }),
    ...ignoredClusterFlag,
    slurm: Flags.boolean({ char: 's', description: 'also count slots of pending Slurm allocations' }),
  };
  static override summary = 'Count live worker slots.';

  async run(): Promise<WorkerCount> {
    const count = await countWorkers(await this.context(), this.flags.pool_name, this.flags.slurm);
    this.log(String(count.total));
    if (count.total <= 0) process.exitCode = 1;
    return count;
  }
}
