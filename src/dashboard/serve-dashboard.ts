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
  let resolveStopped!: () => void;
  const stopped = new Promise<void>(r => (resolveStopped = r));
  // Installed before the dashboard listens: "dashboard listening" is logged as it starts, and a SIGTERM right
  // after it killed the process by the default action (19 times in 20 here). A stop asked for meanwhile
  // closes it once started.
  let dashboard: Awaited<ReturnType<typeof startDashboard>> | undefined;
  let stopAsked = false;
  const uninstall = installShutdown(
    {
      stop: async () => {
        if (!dashboard) {
          stopAsked = true;
          return;
        }
        await dashboard.close();
        resolveStopped();
      },
    },
    logger,
  );
  try {
    dashboard = await startDashboard(ctx, opts);
  } catch (err) {
    uninstall();
    throw err;
  }
  onListening(dashboard.url);
  if (stopAsked) void dashboard.close().then(resolveStopped);
  try {
    await stopped;
  } finally {
    uninstall();
    exitSoonAfterStop();
  }
  return { url: dashboard.url };
}
