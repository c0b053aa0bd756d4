import { statSync } from 'node:fs';

import { InvalidInputError } from '../errors.js';
import { checkLeaseSettings, dashboardCredentials, type Config } from '../config.js';
import { loadSiteConfig } from '../slurm/site-profiles.js';
import type { DashboardOptions } from '../dashboard/start-dashboard.js';
import type { MetricsOptions } from '../metrics/serve-metrics.js';
import { checkManagerExposure, type ManagerOptions } from '../manager/run-manager.js';
import { parseDurationFlag } from './worker-cli.js';

/** `jtm manager`'s own flags (commands/manager.ts), as oclif parses them. */
export interface ManagerFlags {
  show_resource_log: boolean;
  log_dir?: string | undefined;
  'sweep-interval'?: string | undefined;
  'metrics-port'?: number | undefined;
  'metrics-host'?: string | undefined;
  dashboard: boolean;
  'dashboard-host'?: string | undefined;
  'dashboard-port'?: number | undefined;
}

export interface ManagerSettings {
  /** The configuration with the flags' overrides (sweep interval, log dir). */
  config: Config;
  opts: ManagerOptions;
  dashboard?: DashboardOptions;
  metrics?: MetricsOptions;
}

/**
 * The manager's settings: its flags over the configuration, checked before Redis is reached (a lease the
 * workers could not keep, or a dashboard or metrics endpoint exposed without credentials, is refused at once).
 */
export function managerSettings(flags: ManagerFlags, base: Config): ManagerSettings {
  const sweepIntervalMs =
    flags['sweep-interval'] !== undefined
      ? parseDurationFlag(flags['sweep-interval'], '--sweep-interval', { positive: true })
      : base.sweepIntervalMs;
  const config = { ...base, sweepIntervalMs, ...(flags.log_dir ? { logDir: flags.log_dir } : {}) };
  // The manager declares workers dead by the same lease: it must agree with what workers are allowed.
  checkLeaseSettings(config);
  // It books every dynamic pool's allocations from the site configuration: one it cannot read is said at its
  // start (it started without a word, then failed every dynamic pool's tasks as sbatch failures, rc 126, while
  // check-manager called it healthy: adversary 25 F1).
  if (config.siteConfigPath !== undefined) loadSiteConfig(config.siteConfigPath);
  checkNotAFile(config.logDir);
  const credentials = dashboardCredentials(config);
  const dashboard: DashboardOptions | undefined = flags.dashboard
    ? {
        host: flags['dashboard-host'] ?? config.dashboardHost,
        port: flags['dashboard-port'] ?? config.dashboardPort,
        allowActions: false,
        credentials,
      }
    : undefined;
  const metricsPort = flags['metrics-port'] ?? config.metricsPort;
  const metrics: MetricsOptions | undefined =
    metricsPort === undefined
      ? undefined
      : { host: flags['metrics-host'] ?? config.metricsHost, port: metricsPort, credentials };
  checkManagerExposure(dashboard, metrics);
  return {
    config,
    opts: { sweepIntervalMs, showResourceLog: flags.show_resource_log },
    ...(dashboard ? { dashboard } : {}),
    ...(metrics ? { metrics } : {}),
  };
}

/**
 * The manager writes dynamic pools' batch scripts under its log directory (`<dir>/job`) and gives the directory
 * to the workers it books: a file there started the manager without a word, and every allocation failed later
 * (adversary 34 L7; the worker refuses it at its start). A directory not there yet is made when needed.
 */
function checkNotAFile(dir: string): void {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (st && !st.isDirectory()) {
    throw new InvalidInputError(
      `cannot use the log directory ${dir} (--log_dir / JTM_LOG_DIR): ENOTDIR: not a directory`,
    );
  }
}
