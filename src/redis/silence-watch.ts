import { Cluster } from 'ioredis';

import { queuedCommands, queuedCount } from './command-queues.js';
import { StallAwareTimeoutError } from './stall-aware-timeout.js';
import { hardDisconnect, type RedisClient } from './connection.js';

/**
 * Ends a connection whose Redis has stopped answering: commands sent, and nothing heard from Redis for
 * `budgetMs` of time this process could run (a stall — no CPU for it — does not count, as in
 * withStallAwareTimeout), or `capMs` of wall time. Every pending command then fails with a connection error
 * ("no answer within N ms"), which callers report as Redis unreachable.
 *
 * A connect is bounded, but a Redis stopped after it (SIGSTOP, a hung VM, a partition that drops packets) kept
 * the calls of a long-lived client (the programmatic API) waiting for as long as it stayed stopped (adversary 22
 * H1), and a command's (`jtm submit` sent its commit and waited until Redis resumed): both are watched.
 * The clock runs only while commands wait for an answer, and any byte read restarts it: a bulk submit whose
 * replies keep coming is never cut, however long it takes. A Cluster client has its own command limit.
 */
export function watchSilence(redis: RedisClient, budgetMs: number, capMs: number): () => void {
  if (redis instanceof Cluster) return () => {};
  const TICK_MS = 25;
  const TOLERANCE_MS = 15;
  let stream: typeof redis.stream | undefined;
  let last = Date.now();
  let silentFor = 0;
  let silentSince = last;
  let checking = false;
  let cut = false;
  const heard = (): void => {
    silentFor = 0;
    silentSince = Date.now();
  };
  const timer = setInterval(() => {
    const now = Date.now();
    const lateness = Math.max(0, now - last - TICK_MS - TOLERANCE_MS);
    const ran = now - last - lateness;
    last = now;
    // A new socket (ioredis reconnected): listen to it; its first bytes are the answer to its handshake.
    if (redis.stream !== stream) {
      stream?.off('data', heard);
      stream = redis.stream;
      stream?.on('data', heard);
      heard();
      return;
    }
    // Whatever waits, in whichever queue: a command sent; one sent before a reset, held for its resend once the
    // new connection is ready (prevCommandQueue); the new connection's own handshake. A reconnect accepted and
    // then never answered (a firewall that drops the connection) is not ready for ever: counted all the same
    // (`jtm submit`, `status` and `kill` waited there for good: adversary 30 F2).
    if (queuedCount(redis) === 0) {
      heard();
      return;
    }
    silentFor += ran;
    if (silentFor < budgetMs && now - silentSince < capMs) return;
    if (checking) return;
    // Timers run before the socket is read: after a stall of this process (a long synchronous section of the
    // program, a GC, a frozen VM) the answer may be waiting in the socket, unread. It gets one turn first (an
    // immediate runs after the poll phase): a client busy for 7 s failed a `get` Redis had answered in 1 ms
    // (review of s15).
    checking = true;
    setImmediate(() => {
      checking = false;
      if (cut || queuedCount(redis) === 0) return;
      if (silentFor < budgetMs && Date.now() - silentSince < capMs) return;
      cut = true;
      const err = new StallAwareTimeoutError(budgetMs);
      silenced.set(redis, err);
      stop();
      // The commands waiting fail with why (the disconnect would say only "Connection is closed."): callers
      // report "cannot reach Redis (no answer within N ms)".
      for (const item of queuedCommands(redis)) item.command.reject(err);
      hardDisconnect(redis);
    });
  }, TICK_MS);
  // Only what waits on the connection keeps the process alive, not this watch.
  timer.unref();
  const stop = (): void => {
    clearInterval(timer);
    stream?.off('data', heard);
  };
  return stop;
}

const silenced = new WeakMap<RedisClient, Error>();

/** Why watchSilence ended this connection ("no answer within N ms"), or undefined if it did not. */
export function silencedBy(redis: RedisClient): Error | undefined {
  return silenced.get(redis);
}
