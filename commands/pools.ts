import { BaseCommand } from '../src/cli/base-command.js';
import { formatPools, listPools, type PoolInfo } from '../src/pools/list-pools.js';

export default class Pools extends BaseCommand<typeof Pools> {
  static override description = `Lists every pool: kind (manual, or dynamic when Slurm-provisioned), live workers and slots, waiting and active tasks, Slurm jobs, idle time and creation time. With --json, everything including the pool spec.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ];
  static override summary = 'List pools.';

  async run(): Promise<PoolInfo[]> {
    const pools = await listPools(await this.context());
    if (!this.jsonEnabled()) this.log(formatPools(pools));
    return pools;
  }
}
