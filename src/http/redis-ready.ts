import type { NextFunction, Request, Response } from 'express';

import type { JtmContext } from '../context.js';
import { RedisUnavailableError } from '../errors.js';
import { redisLocation } from '../redis/connection.js';

/**
 * Answers 503 REDIS_UNAVAILABLE at once, rather than never, while the daemon's Redis connection is down. The
 * dashboard's and the manager's connections queue commands until Redis returns (their sweeps and streams want
 * that), so every page, API call and Prometheus scrape used to hang until then: no status a monitor could
 * tell from a dead process, and one socket held per request. A request waits up to JTM_CONNECT_TIMEOUT for a
 * connection that is reconnecting (a blip), then gets the 503: JSON on /api, text elsewhere.
 */
export function answerWhileRedisDown(ctx: JtmContext) {
  // One waiter for the next 'ready', shared by the requests that wait for it (one listener, not one each).
  let nextReady: Promise<void> | undefined;
  const whenReady = (): Promise<void> =>
    (nextReady ??= new Promise<void>(r =>
      ctx.redis.once('ready', () => {
        nextReady = undefined;
        r();
      }),
    ));
  // A Redis that stopped answering on a connection that stays up (SIGSTOP, a hung host, a partition that keeps the
  // TCP session) left every request hanging for good (adversary 41 F2): each request joins a PING sent when it
  // came (one in flight at a time), and if that PING has no answer within JTM_CONNECT_TIMEOUT while the request has
  // sent nothing, it gets the 503. A route slow on its own (a large scrape) is not cut: its PING came back.
  let probe: { answered: boolean } | undefined;
  const probeRedis = (): { answered: boolean } => {
    if (probe && !probe.answered) return probe;
    const p = { answered: false };
    probe = p;
    const done = (): void => {
      p.answered = true;
    };
    ctx.redis.ping().then(done, done);
    return p;
  };
  const unavailable = (req: Request, res: Response): void => {
    const err = new RedisUnavailableError(redisLocation(ctx.config));
    res.status(503);
    if (req.path.startsWith('/api/')) res.json({ error: err.code, message: err.message });
    else res.type('text/plain').send(`${err.message}\n`);
  };
  return (req: Request, res: Response, next: NextFunction): void => {
    if (ctx.redis.status === 'ready') {
      const p = probeRedis();
      const timer = setTimeout(() => {
        if (p.answered || res.headersSent || res.writableEnded) return;
        unavailable(req, res);
        ignoreLaterWrites(res);
      }, ctx.config.connectTimeoutMs);
      res.once('close', () => clearTimeout(timer));
      next();
      return;
    }
    let answered = false;
    const timer = setTimeout(() => {
      answered = true;
      unavailable(req, res);
    }, ctx.config.connectTimeoutMs);
    void whenReady().then(() => {
      if (answered) return;
      clearTimeout(timer);
      next();
    });
  };
}

/**
 * After the 503, the route still runs and answers once Redis does: what it writes then goes nowhere, rather than
 * throwing "headers already sent" from its code.
 */
function ignoreLaterWrites(res: Response): void {
  const none = (): Response => res;
  Object.assign(res, { setHeader: none, writeHead: none, write: () => true, end: none });
}
