import express, { type Express } from 'express';

import type { Logger } from '../logger.js';
import { basicAuth, loopbackHostOnly, securityHeaders, type Credentials } from './auth.js';

/**
 * The app every JTM HTTP server starts from (the dashboard, the metrics endpoint), with the same guards in the
 * same order, so that the two cannot drift apart: security headers on every answer, a loopback server answering
 * loopback Host names only (DNS rebinding), and with credentials basic auth (rate limited) before any route.
 * Whether the address may be served at all is checkExposure's, called by each server before it reaches Redis.
 */
export function guardedApp(
  host: string,
  credentials: Credentials | undefined,
  logger: Logger,
  logEveryMs: number,
): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(securityHeaders);
  app.use(loopbackHostOnly(host, credentials));
  if (credentials) app.use(basicAuth(credentials, logger, { logEveryMs }));
  return app;
}
