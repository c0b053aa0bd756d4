import type { EventEmitter } from 'node:events';

import type { Redis } from 'ioredis';
import { describe } from 'vitest';

import { closeConnection, createConnection } from '../../src/redis/connection.js';
import { it } from '../helpers/store.js';

/** The socket under an ioredis connection. */
const socketOf = (redis: Redis): EventEmitter => (redis as unknown as { stream: EventEmitter }).stream;

describe('a second error on the same socket (src/redis/connectors.ts)', () => {
  // Node's TLS socket emits two when a server that wants a client certificate refuses the client: its alert,
  // then the reset. ioredis listens with `once`: the second was an uncaught exception, and a worker exited 1 in
  // 1 start in 5 instead of 255 with its line (CI, stop 33; security.test.ts's mutual-TLS row). Here the two
  // errors are emitted on a real connection's socket, in that order.
  it('is no uncaught exception, for a connection and for its copies (BullMQ duplicates it)', async ({
    ctx,
    expect,
  }) => {
    const redis = (await createConnection(ctx.config, 'worker')) as Redis;
    const copy = redis.duplicate();
    redis.on('error', () => {});
    copy.on('error', () => {});
    try {
      await Promise.all([redis.ping(), copy.ping()]);
      for (const r of [redis, copy]) {
        const socket = socketOf(r);
        socket.emit('error', new Error('tlsv13 alert certificate required'));
        expect(() => socket.emit('error', new Error('read ECONNRESET'))).not.toThrow();
      }
      // And the connections come back (a daemon's reconnects).
      await expect(Promise.all([redis.ping(), copy.ping()])).resolves.toEqual(['PONG', 'PONG']);
    } finally {
      await Promise.all([closeConnection(redis), closeConnection(copy)]);
    }
  });
});
