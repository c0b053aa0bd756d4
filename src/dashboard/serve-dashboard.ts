import { setTimeout as sleep } from 'node:timers/promises';

import type { JtmContext } from '../context.js';
import { checkExposure } from '../http/auth.js';
import type { Logger } from '../logger.js';
import { exitSoonAfterStop, installShutdownEarly } from '../shutdown.js';
import { startDashboard, type DashboardOptions } from './start-dashboard.js';

/** How long a stop waits for the dashboard to close before the process ends anyway. */
const STOP_GRACE_MS = 5000;

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
  // Closing waits for Redis (bull-board's queues, the pool sync): with Redis gone that never ended, and the
  // dashboard ignored SIGTERM and a second one. A stop gets STOP_GRACE_MS; a second signal ends it at once.
  shutdown.ready({
    stop: async force => {
      if (force) return resolveStopped();
      const closed = await Promise.race([
        dashboard.close().then(() => true),
        sleep(STOP_GRACE_MS).then(() => false),
      ]);
      if (!closed)
        logger.warn(
          { graceMs: STOP_GRACE_MS },
          'dashboard did not stop in time (Redis unreachable?): exiting',
        );
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
