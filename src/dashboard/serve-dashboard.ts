import type { JtmContext } from '../context.js';
import { checkExposure } from '../http/auth.js';
import type { Logger } from '../logger.js';
import { exitSoonAfterStop, installShutdown } from '../shutdown.js';
import { startDashboard, type DashboardOptions } from './start-dashboard.js';

/** Serves the dashboard until SIGTERM/SIGINT; `onListening` gets the URL once it accepts requests. */
export async function serveDashboard(
  open: () => Promise<JtmContext>,
  opts: DashboardOptions,
  logger: Logger,
  onListening: (url: string) => void,
): Promise<{ url: string }> {
  checkExposure(opts.host, opts.credentials);
  const ctx = await open();
  const dashboard = await startDashboard(ctx, opts);
  onListening(dashboard.url);
  let resolveStopped!: () => void;
  const stopped = new Promise<void>(r => (resolveStopped = r));
  const uninstall = installShutdown({ stop: () => dashboard.close().then(resolveStopped) }, logger);
  try {
    await stopped;
  } finally {
    uninstall();
    exitSoonAfterStop();
  }
  return { url: dashboard.url };
}
