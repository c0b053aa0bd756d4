import { timingSafeEqual } from 'node:crypto';

import type { NextFunction, Request, Response } from 'express';

import { DashboardExposedError, InvalidInputError } from '../errors.js';

export interface Credentials {
  user: string;
  password: string;
}

/** What the exposure refusal calls the manager's Prometheus endpoint. */
export const METRICS_ENDPOINT = 'the metrics endpoint';

/** 127.0.0.0/8, ::1 and localhost: addresses nobody else can reach. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Beyond loopback the dashboard (task commands, hosts, paths) and the metrics endpoint (`what`) are served
 * only behind credentials. Checked before Redis is reached: a refused setting is answered at once. An empty
 * address is no address (`--host ''` was refused as an exposure "on  without credentials").
 */
export function checkExposure(
  host: string,
  credentials: Credentials | undefined,
  what = 'the dashboard',
): void {
  if (host.trim() === '') {
    throw new InvalidInputError(`invalid address ${JSON.stringify(host)} for ${what}: use e.g. 127.0.0.1`);
  }
  if (!isLoopback(host) && !credentials) throw new DashboardExposedError(host, what);
}

/** Headers of every response: no content sniffing (JSON errors repeat user input, such as a pool name). */
export function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.set('X-Content-Type-Options', 'nosniff');
  next();
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** HTTP basic auth on every route, bull-board's assets and API included. */
export function basicAuth(credentials: Credentials) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (m?.[1]) {
      const decoded = Buffer.from(m[1], 'base64').toString('utf8');
      const i = decoded.indexOf(':');
      if (
        i >= 0 &&
        same(decoded.slice(0, i), credentials.user) &&
        same(decoded.slice(i + 1), credentials.password)
      ) {
        next();
        return;
      }
    }
    res
      .set('WWW-Authenticate', 'Basic realm="jtm", charset="UTF-8"')
      .status(401)
      .send('authentication required');
  };
}
