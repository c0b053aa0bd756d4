import { randomBytes } from 'node:crypto';

import type { JtmContext } from '../context.js';
import { runScript } from '../redis/run-script.js';
import { RELEASE_LOCK, RENEW_LOCK } from '../redis/scripts.js';

/** A Redis lock held by this process, its time to live renewed while it is held. */
export interface RenewedLock {
  /** False once a renewal found the lock gone (expired, or taken by another): stop what it guards. */
  held(): boolean;
  release(): Promise<void>;
}

/**
 * Takes `key` for as long as the work it guards runs, or undefined when another holds it. The lock lives
 * `ttlMs` and is renewed every third of it, up to `maxHoldMs` in all: a holder that dies (SIGKILL, a lost
 * node) blocks the others for `ttlMs` at most, not for a time long enough for the longest work (the
 * provisioning lock lived 2 minutes: a manager killed mid-pass froze every pool's provisioning that long,
 * adversary 11 L5), and a holder hung in its work gives the lock up after `maxHoldMs`.
 */
export async function takeRenewedLock(
  ctx: JtmContext,
  key: string,
  ttlMs: number,
  maxHoldMs: number,
): Promise<RenewedLock | undefined> {
  const token = randomBytes(8).toString('hex');
  if ((await ctx.redis.set(key, token, 'PX', ttlMs, 'NX')) !== 'OK') return undefined;
  const until = Date.now() + maxHoldMs;
  let held = true;
  // When the lock surely still lasts until: taken or last renewed, plus its TTL. Renewals that fail (Redis
  // unreachable, a failover that lost the key) let it lapse here as in Redis, where another manager may take it.
  let lastsUntil = Date.now() + ttlMs;
  const timer = setInterval(
    () => {
      if (Date.now() > until) {
        held = false;
        clearInterval(timer);
        return;
      }
      const sent = Date.now();
      runScript(ctx.redis, RENEW_LOCK, [key], [token, ttlMs]).then(
        renewed => {
          if (Number(renewed) === 1) {
            lastsUntil = sent + ttlMs;
            return;
          }
          held = false;
          clearInterval(timer);
        },
        // A renewal that failed (Redis unreachable) may still find the lock later: lastsUntil decides meanwhile.
        () => {},
      );
    },
    Math.max(100, Math.floor(ttlMs / 3)),
  );
  timer.unref();
  return {
    held: () => held && Date.now() < lastsUntil,
    release: async () => {
      clearInterval(timer);
      held = false;
      await runScript(ctx.redis, RELEASE_LOCK, [key], [token]).catch(() => {});
    },
  };
}
