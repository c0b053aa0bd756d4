import { Queue, Worker } from 'bullmq';

import { allShards, type JtmContext } from '../context.js';
import { MAX_TIMER_MS } from '../durations.js';
import { checkExposure, METRICS_ENDPOINT } from '../http/auth.js';
import { isConnectionError, toError } from '../errors.js';
import type { DashboardOptions } from '../dashboard/start-dashboard.js';
import type { MetricsOptions } from '../metrics/serve-metrics.js';
import { rateLimited, type Logger } from '../logger.js';
import { closeWithin, exitSoonAfterStop, installShutdownEarly } from '../shutdown.js';
import { ProvisionOnDemand } from './provision-on-demand.js';
import { ResourceTail } from './resource-tail.js';
import { startPresence } from './slurm-client.js';
import { newSweepState, sweep, type SweepState } from './sweep.js';
import { warnAboutRedisSettings } from '../redis-settings.js';
import { QUEUE_EVENTS_MAX_LEN } from '../pools/pool-queue.js';

export const SWEEP_SCHEDULER_ID = 'sweep';

const SWEEP_TEMPLATE = {
  name: 'sweep',
  opts: { removeOnComplete: { count: 10 }, removeOnFail: { count: 50 } },
};

export interface ManagerOptions {
  sweepIntervalMs: number;
  /** Log each resource sample of running tasks as it arrives (-r). */
  showResourceLog: boolean;
}

export interface RunningManager {
  readonly state: SweepState;
  stop(): Promise<void>;
  readonly stopped: Promise<void>;
}

/**
 * Starts a manager: a BullMQ job scheduler on the control queue produces one sweep job per tick, however
 * many managers run (each upserts the same scheduler), and a concurrency-1 Worker on that queue runs the
 * sweep for whichever manager fetched the job. Reconciliation starts with the first sweep.
 */
export async function startManager(ctx: JtmContext, opts: ManagerOptions): Promise<RunningManager> {
  const log = ctx.logger;
  const state = newSweepState(ctx, opts.sweepIntervalMs);
  const connection = { connection: ctx.redis, prefix: ctx.keys.queuePrefix, skipVersionCheck: true };
  // Its events stream capped like a pool queue's: a sweep every few seconds would otherwise keep 10,000 events.
  const queue = new Queue(ctx.keys.managerQueue, {
    ...connection,
    streams: { events: { maxLen: QUEUE_EVENTS_MAX_LEN } },
  });
  await queue.upsertJobScheduler(SWEEP_SCHEDULER_ID, { every: opts.sweepIntervalMs }, SWEEP_TEMPLATE);
  const worker = new Worker(
    ctx.keys.managerQueue,
    async () => {
      const report = await sweep(ctx, state);
      return { swept: report.swept, ms: report.duration_ms };
    },
    {
      ...connection,
      concurrency: 1,
      // A sweep killed mid-way is not worth re-running: the next tick does the same work.
      maxStalledCount: 0,
      autorun: false,
    },
  );
  // While Redis is down BullMQ reports every reconnect attempt: once per kind and minute is enough.
  const logRepeat = rateLimited(log, ctx.config.logRepeatIntervalMs);
  worker.on('error', err => {
    const message = toError(err).message;
    // Redis unreachable: routine (a restart), the manager reconnects by itself; a warning (adversary 30 F4).
    logRepeat(
      isConnectionError(err) ? 'warn' : 'error',
      message.replace(/\d+/g, '#'),
      { err: message },
      'manager worker error',
    );
  });
  worker.on('failed', (_job, err) => log.error({ err: toError(err) }, 'sweep failed'));
  // The scheduler adds the next tick when a manager fetches the current one; a manager killed in between
  // would leave no next tick, so each manager upserts it again when no sweep has happened for a while.
  // Three periods, within what one timer can hold (a period itself is at most MAX_TIMER_MS).
  const watchdogMs = Math.min(opts.sweepIntervalMs * 3, MAX_TIMER_MS);
  const watchdog = setInterval(() => {
    void (async () => {
      if (await ctx.redis.exists(ctx.keys.managerAlive)) return;
      await queue.upsertJobScheduler(SWEEP_SCHEDULER_ID, { every: opts.sweepIntervalMs }, SWEEP_TEMPLATE);
    })().catch(err => log.warn({ err: toError(err) }, 'could not refresh the sweep scheduler'));
  }, watchdogMs);
  const tail = opts.showResourceLog ? new ResourceTail(ctx, opts.sweepIntervalMs) : undefined;
  tail?.start();
  const onDemand = new ProvisionOnDemand(ctx);
  await onDemand.start();
  // Seen by the other managers: one whose Slurm client fails leaves provisioning to this one (slurm-client.ts).
  const presence = startPresence(ctx);

  let resolveStopped!: () => void;
  const stopped = new Promise<void>(r => (resolveStopped = r));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info('manager stopping');
      clearInterval(watchdog);
      tail?.stop();
      await presence.stop();
      await onDemand.stop();
      await worker.close();
      await queue.close();
      await state.jobs.close();
      log.info({ sweeps: state.sweeps }, 'manager stopped');
      resolveStopped();
    })();
    return stopping;
  };
  void worker.run().catch(err => log.error({ err: toError(err) }, 'manager run loop failed'));
  log.info({ sweepIntervalMs: opts.sweepIntervalMs }, 'manager started');
  return { state, stop, stopped };
}

/**
 * The dashboard's and the metrics endpoint's addresses, checked before the manager reaches Redis: a refused
 * exposure is answered at once (it waited for Redis first).
 */
export function checkManagerExposure(dashboard?: DashboardOptions, metrics?: MetricsOptions): void {
  if (dashboard) checkExposure(dashboard.host, dashboard.credentials);
  if (metrics) checkExposure(metrics.host, metrics.credentials, METRICS_ENDPOINT);
}

/**
 * `jtm manager`: runs until SIGTERM/SIGINT, serving the dashboard too when `dashboardOpts` is given and
 * Prometheus metrics when `metricsOpts` is.
 */
export async function runManager(
  ctx: JtmContext,
  opts: ManagerOptions,
  logger: Logger,
  dashboardOpts?: DashboardOptions,
  metricsOpts?: MetricsOptions,
): Promise<{ sweeps: number; dashboard?: string; metrics?: string }> {
  // Signals are handled from the start: each part logs as it starts, and a stop asked for meanwhile is done
  // once all have started (shutdown.ts).
  const shutdown = installShutdownEarly(logger);
  // Loaded only when asked for: express and bull-board are not a manager's start-up cost otherwise. Started
  // first, so that a dashboard that may not start (exposed without credentials) stops the command at once.
  // What has started is closed when a later part cannot start (a metrics port already taken): the dashboard
  // went on serving 500s and polling a closed connection, and the manager never exited.
  const started: { close(): Promise<void> }[] = [];
  let dashboard: { url: string; close(): Promise<void> } | undefined;
  let metrics: { url: string; close(): Promise<void> } | undefined;
  let managers: RunningManager[];
  try {
    dashboard = dashboardOpts
      ? await (await import('../dashboard/start-dashboard.js')).startDashboard(ctx, dashboardOpts)
      : undefined;
    if (dashboard) started.push(dashboard);
    metrics = metricsOpts
      ? await (await import('../metrics/serve-metrics.js')).startMetricsServer(ctx, metricsOpts)
      : undefined;
    if (metrics) started.push(metrics);
    // One sweep loop per shard (docs/scaling.md), each with its shard's scheduler and lease: one manager
    // process still covers the whole site, and any other manager takes over every shard when it dies.
    managers = await Promise.all(allShards(ctx).map(shard => startManager(shard, opts)));
    // Not awaited: on a connection that waits for Redis, a stop must not wait for it.
    void warnAboutRedisSettings(ctx);
  } catch (err) {
    shutdown.uninstall();
    await Promise.allSettled(started.map(s => s.close()));
    throw err;
  }
  // Closing BullMQ's worker and queues waits for Redis: bounded (shutdown.ts: closeWithin).
  let giveUp!: () => void;
  const gaveUp = new Promise<void>(r => (giveUp = r));
  shutdown.ready({
    stop: async force => {
      await closeWithin(
        () => Promise.all([...managers.map(m => m.stop()), ...started.map(s => s.close())]),
        force,
        'manager',
        logger,
      );
      giveUp();
    },
  });
  try {
    await Promise.race([Promise.all(managers.map(m => m.stopped)), gaveUp]);
  } finally {
    shutdown.uninstall();
    exitSoonAfterStop();
  }
  const sweeps = managers.reduce((n, m) => n + m.state.sweeps, 0);
  return { sweeps, dashboard: dashboard?.url, metrics: metrics?.url };
}
