import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { ignoredClusterFlag } from '../src/cli/legacy-flags.js';
import { parseDurationFlag } from '../src/cli/worker-cli.js';
import { InvalidInputError, PoolNotFoundError } from '../src/errors.js';
import { removePool, type RemovePoolResult } from '../src/tasks/remove-pool.js';

export default class RemovePool extends BaseCommand<typeof RemovePool> {
  static override description = `Stops the pool's workers, cancels its Slurm allocations, ends its waiting tasks as terminated (-4) and removes its queue and registry entry. Running tasks finish on their workers, or with --force are killed. Prints "removed", or "failed" for an unknown pool. Exit codes: 0 removed; 1 unknown pool or invalid name; 255 Redis unreachable.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %> -p small',
    '<%= config.bin %> <%= command.id %> -p small --force',
  ];
  static override flags = {
    pool_name: Flags.string({ char: 'p', description: 'pool to remove (required)' }),
    force: Flags.boolean({ description: 'kill the running tasks of the pool too' }),
    wait: Flags.string({
      description: 'with --force, how long to wait for killed tasks to end',
      default: '15s',
    }),
    ...ignoredClusterFlag,
  };
  static override summary = 'Remove a pool.';

  async run(): Promise<RemovePoolResult | { removed: false }> {
    const waitMs = parseDurationFlag(this.flags.wait, '--wait');
    // Checked here rather than by oclif, whose message for a missing flag is a heading without the reason.
    const pool = this.flags.pool_name;
    if (pool === undefined) throw new InvalidInputError('no pool given: use -p POOL');
    try {
      const result = await removePool(await this.context(), pool, {
        force: this.flags.force,
        waitMs,
      });
      this.log('removed');
      return result;
    } catch (err) {
      if (!(err instanceof PoolNotFoundError)) throw err;
      this.log('failed');
      process.exitCode = 1;
      return { removed: false };
    }
  }
}
