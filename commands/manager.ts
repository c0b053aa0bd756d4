import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { managerSettings } from '../src/cli/manager-cli.js';
import type { LogLevel } from '../src/config.js';
import { runManager } from '../src/manager/run-manager.js';

export default class Manager extends BaseCommand<typeof Manager> {
  static override description = `Sweeps every JTM_SWEEP_INTERVAL (default 5s): declares workers without heartbeat dead and re-queues or ends their tasks, reconciles task records with the pool queues, expires idle pools and provisions Slurm pools. Any number of managers may run (on any hosts): each tick is swept by one of them. Not needed for submit, status or workers to work. Stops on SIGTERM/SIGINT.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> -r --sweep-interval 2s',
  ];
  static override flags = {
    show_resource_log: Flags.boolean({
      char: 'r',
      description: 'log resource samples of running tasks as they arrive',
    }),
    log_dir: Flags.string({ description: 'log directory (-ld)' }),
    'sweep-interval': Flags.string({
      description: 'time between sweeps (overrides JTM_SWEEP_INTERVAL), e.g. 5s',
    }),
    'metrics-port': Flags.integer({
      description: 'serve Prometheus metrics on this port at /metrics (default $JTM_METRICS_PORT; none: off)',
      min: 0,
    }),
    'metrics-host': Flags.string({
      description:
        'metrics address (default $JTM_METRICS_HOST or 127.0.0.1; beyond loopback only with credentials)',
    }),
    dashboard: Flags.boolean({ description: 'also serve the dashboard (see jtm dashboard --help)' }),
    'dashboard-host': Flags.string({
      description: 'dashboard address (default $JTM_DASHBOARD_HOST or 127.0.0.1)',
    }),
    'dashboard-port': Flags.integer({
      description: 'dashboard port (default $JTM_DASHBOARD_PORT or 3000)',
      min: 0,
      max: 65535,
    }),
    user: Flags.string({
      char: 'u',
      hidden: true,
      description: 'ignored; kept for the original command line',
    }),
  };
  static override summary = 'Run the manager (dead workers, task recovery, reconciliation, pools).';

  protected override defaultLogLevel(): LogLevel {
    return 'info';
  }

  async run(): Promise<{ sweeps: number; dashboard?: string; metrics?: string }> {
    const settings = managerSettings(this.flags, this.jtm);
    this.jtm = settings.config;
    const ctx = await this.context('worker');
    return runManager(ctx, settings.opts, this.logger, settings.dashboard, settings.metrics);
  }
}
