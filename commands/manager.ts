import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { parseDurationFlag } from '../src/cli/worker-cli.js';
import { checkLeaseSettings, type LogLevel } from '../src/config.js';
import { checkManagerExposure, runManager } from '../src/manager/run-manager.js';

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
    const f = this.flags;
    const sweepIntervalMs = f['sweep-interval']
      ? parseDurationFlag(f['sweep-interval'], '--sweep-interval', { positive: true })
      : this.jtm.sweepIntervalMs;
    this.jtm = { ...this.jtm, sweepIntervalMs, ...(f.log_dir ? { logDir: f.log_dir } : {}) };
    // The manager declares workers dead by the same lease: it must agree with what workers are allowed.
    checkLeaseSettings(this.jtm);
    const { dashboardUser: user, dashboardPassword: password } = this.jtm;
    const dashboard = f.dashboard
      ? {
          host: f['dashboard-host'] ?? this.jtm.dashboardHost,
          port: f['dashboard-port'] ?? this.jtm.dashboardPort,
          allowActions: false,
          credentials: user && password ? { user, password } : undefined,
        }
      : undefined;
    const metricsPort = f['metrics-port'] ?? this.jtm.metricsPort;
    const metrics =
      metricsPort === undefined
        ? undefined
        : {
            host: f['metrics-host'] ?? this.jtm.metricsHost,
            port: metricsPort,
            credentials: user && password ? { user, password } : undefined,
          };
    checkManagerExposure(dashboard, metrics);
    const ctx = await this.context('worker');
    return runManager(
      ctx,
      { sweepIntervalMs, showResourceLog: f.show_resource_log },
      this.logger,
      dashboard,
      metrics,
    );
  }
}
