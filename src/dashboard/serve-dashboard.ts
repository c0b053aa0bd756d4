import type { JtmContext } from '../context.js';
import { checkExposure } from '../http/auth.js';
import type { Logger } from '../logger.js';
import { exitSoonAfterStop, installShutdownEarly } from '../shutdown.js';
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
  // Signals are handled before the dashboard listens (shutdown.ts: installShutdownEarly).
  const shutdown = installShutdownEarly(logger);
  let dashboard: Awaited<ReturnType<typeof startDashboard>>;
  try {
    dashboard = await startDashboard(ctx, opts);
  } catch (err) {
    shutdown.uninstall();
    throw err;
  }
  onListening(dashboard.url);
  let resolveStopped!: () => void;
  const stopped = new Promise<void>(r => (resolveStopped = r));
  shutdown.ready({ stop: () => dashboard.close().then(resolveStopped) });
  try {
    await stopped;
  } finally {
    shutdown.uninstall();
    exitSoonAfterStop();
  }
  return { url: dashboard.url };
}
