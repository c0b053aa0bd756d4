import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { dashboardCredentials, type LogLevel } from '../src/config.js';
import { serveDashboard } from '../src/dashboard/serve-dashboard.js';

export default class Dashboard extends BaseCommand<typeof Dashboard> {
  static override description = `bull-board with one queue per pool (added and removed as pools come and go), live workers with their load (/workers), a task lookup (/task?id=N: record, history, resource samples), a live task view (/task/live?id=N: CPU/memory charts, output over server-sent events, kill), a pool page (/pool?name=P: the last hour per minute, Slurm allocations) and Prometheus metrics (/metrics). Read-only unless --allow-actions. Listens on loopback unless --host says otherwise; beyond loopback it refuses to start without JTM_DASHBOARD_USER and JTM_DASHBOARD_PASSWORD, and when they are set every route asks for them. Prints the URL once it is listening; stops on SIGTERM/SIGINT.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    'JTM_DASHBOARD_USER=ops JTM_DASHBOARD_PASSWORD=… <%= config.bin %> <%= command.id %> --host 0.0.0.0 --port 8080',
  ];
  static override flags = {
    'allow-actions': Flags.boolean({ description: 'allow retry, clean and kill from the dashboard' }),
    host: Flags.string({ description: 'address to listen on (default $JTM_DASHBOARD_HOST or 127.0.0.1)' }),
    port: Flags.integer({
      description: 'port (default $JTM_DASHBOARD_PORT or 3000; 0: any free port)',
      min: 0,
      max: 65535,
    }),
  };
  static override summary = 'Serve the web dashboard (bull-board, workers, task lookup).';

  protected override defaultLogLevel(): LogLevel {
    return 'info';
  }

  async run(): Promise<{ url: string }> {
    return serveDashboard(
      () => this.context('worker'),
      {
        host: this.flags.host ?? this.jtm.dashboardHost,
        port: this.flags.port ?? this.jtm.dashboardPort,
        allowActions: this.flags['allow-actions'],
        credentials: dashboardCredentials(this.jtm),
      },
      this.logger,
      url => this.log(`dashboard listening on ${url}`),
    );
  }
}
