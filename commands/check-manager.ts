import { BaseCommand } from '../src/cli/base-command.js';
import { ignoredClusterFlag } from '../src/cli/legacy-flags.js';
import { readManagerAlive, type ManagerAlive } from '../src/manager/liveness.js';

export default class CheckManager extends BaseCommand<typeof CheckManager> {
  static override description = `Asks Redis whether a manager has swept recently (within 3 sweep intervals; with JTM_SHARDS > 1, every shard), from any host. Prints nothing; with --json, the last sweep time and the host and pid of the manager that made it. Exit codes: 0 a manager is alive, 1 none is, 255 Redis unreachable.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ];
  static override flags = ignoredClusterFlag;
  static override summary = 'Check that a manager is running.';

  async run(): Promise<ManagerAlive | { alive: false }> {
    const alive = await readManagerAlive(await this.context());
    if (!alive) {
      process.exitCode = 1;
      return { alive: false };
    }
    return alive;
  }
}
