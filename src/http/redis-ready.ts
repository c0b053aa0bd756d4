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
  return (req: Request, res: Response, next: NextFunction): void => {
    if (ctx.redis.status === 'ready') {
      next();
      return;
    }
    let answered = false;
    const timer = setTimeout(() => {
      answered = true;
      const err = new RedisUnavailableError(redisLocation(ctx.config));
      res.status(503);
      if (req.path.startsWith('/api/')) res.json({ error: err.code, message: err.message });
      else res.type('text/plain').send(`${err.message}\n`);
    }, ctx.config.connectTimeoutMs);
    void whenReady().then(() => {
      if (answered) return;
      clearTimeout(timer);
      next();
    });
  };
}
