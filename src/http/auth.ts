import { createHash, timingSafeEqual } from 'node:crypto';

import type { NextFunction, Request, Response } from 'express';

import { DashboardExposedError, InvalidInputError } from '../errors.js';
import type { Logger } from '../logger.js';
import { LoginLimiter, type LoginLimitOptions } from './login-limit.js';

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

/**
 * Headers of every response: no content sniffing (JSON errors repeat user input, such as a pool name), and no
 * framing by any page, ours included: a page of another site could frame the live task view invisibly under a
 * decoy and turn one click into a kill, which the Origin check cannot see (the POST comes from our own page).
 */
/**
 * bull-board's pages: their own origin only. Its page links Google's fonts (the user's address and the
 * dashboard's URL sent to Google at each view, a failing request on an offline login node); this policy keeps
 * the browser from asking, and the pages fall back to the system's fonts. Inline styles are bull-board's.
 */
export function sameOriginOnly(_req: Request, res: Response, next: NextFunction): void {
  res.set(
    'Content-Security-Policy',
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'",
  );
  next();
}

export function securityHeaders(_req: Request, res: Response, next: NextFunction): void {
  res.set('X-Content-Type-Options', 'nosniff');
  res.set('X-Frame-Options', 'DENY');
  res.set('Content-Security-Policy', "frame-ancestors 'none'");
  next();
}

/**
 * Equal, in a time that tells nothing: the digests have one length, so neither the secret's length (a length
 * check first answered a wrong length sooner) nor the place of the first difference shows.
 */
function same(a: string, b: string): boolean {
  const digest = (s: string): Buffer => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * HTTP basic auth on every route, bull-board's assets and API included. Wrong credentials (not a request
 * without any, which is how a browser asks for them) are answered 401 after the limiter's delay, and while one
 * is pending the same client's requests with credentials get 429 unchecked (LoginLimiter says why); each
 * client's failures are counted in a warning line at most once a minute. Right credentials pass at once.
 */
export function basicAuth(credentials: Credentials, logger?: Logger, limits?: LoginLimitOptions) {
  const limiter = new LoginLimiter(logger, limits);
  return (req: Request, res: Response, next: NextFunction): void => {
    const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const deny = (): void => {
      res
        .set('WWW-Authenticate', 'Basic realm="jtm", charset="UTF-8"')
        .status(401)
        .send('authentication required');
    };
    if (!m?.[1]) {
      deny();
      return;
    }
    const client = req.socket.remoteAddress ?? '';
    const wait = limiter.refusal(client);
    if (wait > 0) {
      // Answered with the pending 401, not at once: 400 connections looping on immediate 429s made 7,000
      // requests a second (a core's worth) where the same loop on held answers made 1,300.
      const refuse = (): void => {
        res
          .set('Retry-After', '1')
          .status(429)
          .type('text')
          .send('too many wrong logins from this address: try again in a second');
      };
      setTimeout(refuse, wait).unref();
      return;
    }
    // Standard base64 only: Node's decoder stops at the padding and skips what it cannot read, so the right
    // credentials followed by junk (`…cHc=AAAA`) were taken (adversary 41 F4; no bypass, but not the header sent).
    const decoded = /^[A-Za-z0-9+/]+={0,2}$/.test(m[1]) ? Buffer.from(m[1], 'base64').toString('utf8') : '';
    const i = decoded.indexOf(':');
    // Both compared every time (no &&): a wrong user answered sooner than a right user with a wrong password.
    const userOk = same(i >= 0 ? decoded.slice(0, i) : decoded, credentials.user);
    const passwordOk = same(i >= 0 ? decoded.slice(i + 1) : '', credentials.password);
    if (i >= 0 && userOk && passwordOk) {
      next();
      return;
    }
    limiter.failed(client);
    setTimeout(deny, limiter.delayMs).unref();
  };
}

/** The host (and port) of an Origin header, lower case; '' for `null` or anything unparsable. */
function originHost(origin: string): string {
  try {
    return new URL(origin).host.toLowerCase();
  } catch {
    return '';
  }
}

/** The host name of a Host header (`[::1]:3000` → ::1, `Localhost.:80` → localhost). */
function hostName(header: string): string {
  const h = header.trim().toLowerCase();
  const name = h.startsWith('[') ? h.slice(1, h.indexOf(']')) : h.replace(/:\d*$/, '');
  return name.replace(/\.$/, '');
}

/**
 * Without credentials the server is on loopback, where any web page the user opens could reach it through
 * DNS rebinding (a name of the page's site that resolves to 127.0.0.1 next): the page's requests then carry
 * its own name in `Host`. Only loopback names and the address it listens on are answered; others get 421.
 * With credentials (needed beyond loopback) the check is left to them: the rebinding page has none.
 */
export function loopbackHostOnly(listenHost: string, credentials: Credentials | undefined) {
  const own = hostName(listenHost.includes(':') ? `[${listenHost}]` : listenHost);
  return (req: Request, res: Response, next: NextFunction): void => {
    const name = hostName(req.headers.host ?? '');
    if (credentials || name === own || isLoopback(name)) {
      next();
      return;
    }
    res.status(421).type('text').send(`not served under the name ${name}: use 127.0.0.1 or localhost`);
  };
}

/**
 * Writes (POST, PUT, PATCH, DELETE: kill, bull-board's retry and clean) only from the dashboard's own pages. A
 * browser names the page a request comes from (`Origin`, or `Sec-Fetch-Site`): a form of another site posted
 * to /api/tasks/N/kill killed the task, basic-auth credentials included (the browser sends them along).
 * Clients that name no page (curl, scripts) are not a browser a page can drive, and pass.
 */
export function sameOriginWrites(req: Request, res: Response, next: NextFunction): void {
  if (['GET', 'HEAD', 'OPTIONS'].includes(req.method)) {
    next();
    return;
  }
  const origin = req.headers.origin;
  const site = req.headers['sec-fetch-site'];
  // Hosts compared, not schemes: behind a TLS proxy the page is https while this server sees http. Either header
  // naming another page refuses the write, as docs/dashboard.md says: a matching Origin with `Sec-Fetch-Site:
  // cross-site` passed (adversary 35 F7; no browser sends that pair, but the check is what the docs promise).
  const crossOrigin =
    (origin !== undefined && originHost(origin) !== (req.headers.host ?? '').toLowerCase()) ||
    (site !== undefined && site !== 'same-origin' && site !== 'none');
  if (crossOrigin) {
    res
      .status(403)
      .json({ error: 'CROSS_ORIGIN', message: "writes are accepted from the dashboard's own pages only" });
    return;
  }
  next();
}
