import { describe } from 'vitest';

import { silencedBy, watchSilence } from '../../src/redis/silence-watch.js';
import { it } from '../helpers/store.js';

describe("the API's silence watch (src/redis/silence-watch.ts)", () => {
  it('reads an answer waiting in the socket after this process stalled, instead of cutting the connection (review of s15)', async ({
    ctx,
    expect,
  }) => {
    const stop = watchSilence(ctx.redis, 300, 600);
    try {
      // A tick first: the watch listens to the connection's socket from its first one.
      await new Promise(r => setTimeout(r, 60));
      // Sent, then this process busy past the wall-clock cap (from an immediate, so that the next turn of the
      // event loop starts with its timers): Redis answers meanwhile, and the watch's timer runs before the read.
      const [answer] = await new Promise<[Promise<string | null>]>(resolve =>
        setImmediate(() => {
          const sent = ctx.redis.get(ctx.keys.task(1));
          for (const until = Date.now() + 1000; Date.now() < until;);
          resolve([sent]);
        }),
      );
      await expect(answer).resolves.toBeNull();
      expect(silencedBy(ctx.redis)).toBeUndefined();
    } finally {
      stop();
    }
  });
});
