import type { AddressInfo } from 'node:net';

import express, { type Request, type Response } from 'express';
import type { Registry } from 'prom-client';

import type { JtmContext } from '../context.js';
import { toError } from '../errors.js';
import { listen } from '../http/listen.js';
import { answerWhileRedisDown } from '../http/redis-ready.js';
import {
  basicAuth,
  loopbackHostOnly,
  checkExposure,
  METRICS_ENDPOINT,
  securityHeaders,
  type Credentials,
} from '../http/auth.js';
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
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders);
  app.use(loopbackHostOnly(opts.host, opts.credentials));
  if (opts.credentials)
    app.use(basicAuth(opts.credentials, ctx.logger, { logEveryMs: ctx.config.logRepeatIntervalMs }));
  app.use(answerWhileRedisDown(ctx));
  app.get('/metrics', metricsHandler(ctx));
  const server = await listen(app, opts.host, opts.port, 'metrics endpoint');
  const { port } = server.address() as AddressInfo;
  const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${host}:${port}/metrics`;
  ctx.logger.info({ url, auth: Boolean(opts.credentials) }, 'metrics listening');
  return {
    url,
    close: () =>
      new Promise<void>(r => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}
