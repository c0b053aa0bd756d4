import { BaseCommand } from '../src/cli/base-command.js';
import { ignoredClusterFlag } from '../src/cli/legacy-flags.js';
import { readManagerAlive, type ManagerAlive } from '../src/manager/liveness.js';
import { managersWithFailingClient, type ManagerPresence } from '../src/manager/slurm-client.js';

export default class CheckManager extends BaseCommand<typeof CheckManager> {
  static override description = `Asks Redis whether a manager has swept recently (within 3 sweep intervals; with JTM_SHARDS > 1, every shard), from any host. Prints nothing; with --json, the last sweep time and the host and pid of the manager that made it. A running manager whose own Slurm client fails (it leaves provisioning to one whose client works, if one runs) is named in a warning on stderr, and under slurm_client_failing with --json. Exit codes: 0 a manager is alive, 1 none is, 255 Redis unreachable.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> --json',
  ];
  static override flags = ignoredClusterFlag;
  static override summary = 'Check that a manager is running.';

  async run(): Promise<(ManagerAlive & { slurm_client_failing?: ManagerPresence[] }) | { alive: false }> {
    const ctx = await this.context();
    const alive = await readManagerAlive(ctx);
    if (!alive) {
      process.exitCode = 1;
      return { alive: false };
    }
    const failing = await managersWithFailingClient(ctx);
    for (const m of failing)
      this.logger.warn(
        `the manager on ${m.host} (pid ${m.pid}) cannot use its Slurm client (${m.slurm_error}): it leaves provisioning to a manager whose client works while one runs; without one, the dynamic pools' calls fail with that message`,
      );
    return failing.length > 0 ? { ...alive, slurm_client_failing: failing } : alive;
  }
}
