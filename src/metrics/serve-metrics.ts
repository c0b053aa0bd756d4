import type { Request, Response } from 'express';
import type { Registry } from 'prom-client';

import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { guardedApp } from '../http/guarded-app.js';
import { listenAt } from '../http/listen.js';
import { answerWhileRedisDown } from '../http/redis-ready.js';
import { checkExposure, METRICS_ENDPOINT, type Credentials } from '../http/auth.js';
import { createMetricsRegistry } from './registry.js';

export interface MetricsOptions {
  host: string;
  /** 0 picks a free port. */
  port: number;
  credentials?: Credentials;
}

/** `GET /metrics` in Prometheus text format (for the metrics server and the dashboard). */
export function metricsHandler(ctx: JtmContext, registry: Registry = createMetricsRegistry(ctx)) {
  return async (_req: Request, res: Response): Promise<void> => {
    try {
      const body = await registry.metrics();
      res.type(registry.contentType).send(body);
    } catch (err) {
      ctx.logger.error({ err: toError(err) }, 'metrics scrape failed');
      res
        .status(503)
        .type('text/plain')
        .send(`metrics unavailable: ${toError(err).message}\n`);
    }
  };
}

/**
 * `jtm manager --metrics-port`: /metrics alone, with the dashboard's exposure rule (loopback unless
 * credentials are set; when set, basic auth on every request).
 */
export async function startMetricsServer(
  ctx: JtmContext,
  opts: MetricsOptions,
): Promise<{ url: string; close(): Promise<void> }> {
  checkExposure(opts.host, opts.credentials, METRICS_ENDPOINT);
  const app = guardedApp(opts.host, opts.credentials, ctx.logger, ctx.config.logRepeatIntervalMs);
  app.use(answerWhileRedisDown(ctx));
  app.get('/metrics', metricsHandler(ctx));
  const listening = await listenAt(app, opts.host, opts.port, 'metrics endpoint');
  const url = `${listening.origin}/metrics`;
  ctx.logger.info({ url, auth: Boolean(opts.credentials) }, 'metrics listening');
  return { url, close: listening.close };
}
