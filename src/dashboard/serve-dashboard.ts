import type { JtmContext } from '../context.js';
import { checkExposure } from '../http/auth.js';
import type { Logger } from '../logger.js';
import { closeWithin, exitSoonAfterStop, installShutdownEarly } from '../shutdown.js';
import { startDashboard, type DashboardOptions } from './start-dashboard.js';

/** Serves the dashboard until SIGTERM/SIGINT; `onListening` gets the URL once it accepts requests. */
export async function serveDashboard(
  open: () => Promise<JtmContext>,
  opts: DashboardOptions,
  logger: Logger,
  onListening: (url: string) => void,
): Promise<{ url: string }> {
  checkExposure(opts.host, opts.credentials);
  // Signals are handled before the dashboard connects and listens (shutdown.ts: installShutdownEarly).
  const shutdown = installShutdownEarly(logger);
  let dashboard: Awaited<ReturnType<typeof startDashboard>>;
  try {
    dashboard = await startDashboard(await open(), opts);
  } catch (err) {
    shutdown.uninstall();
    throw err;
  }
  onListening(dashboard.url);
  let resolveStopped!: () => void;
  const stopped = new Promise<void>(r => (resolveStopped = r));
  // Closing waits for Redis (bull-board's queues, the pool sync): bounded (shutdown.ts: closeWithin).
  shutdown.ready({
    stop: async force => {
      await closeWithin(() => dashboard.close(), force, 'dashboard', logger);
      resolveStopped();
    },
  });
  try {
    await stopped;
  } finally {
    shutdown.uninstall();
    exitSoonAfterStop();
  }
  return { url: dashboard.url };
}
