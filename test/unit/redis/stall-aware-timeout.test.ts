import { once } from 'node:events';
import { createServer, connect, type AddressInfo } from 'node:net';

import { describe, expect, it } from 'vitest';

import { StallAwareTimeoutError, withStallAwareTimeout } from '../../../src/redis/stall-aware-timeout.js';

/** Keeps the event loop from running for `ms`, as a process waiting for a CPU on a loaded node would. */
function stall(ms: number): void {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    /* busy */
  }
}

describe('withStallAwareTimeout', () => {
  it('rejects after its budget when no answer comes', async () => {
    const never = new Promise<never>(() => {});
    await expect(withStallAwareTimeout(never, 100, 5000)).rejects.toBeInstanceOf(StallAwareTimeoutError);
  });

  it('passes on the value and the error of the promise', async () => {
    await expect(withStallAwareTimeout(Promise.resolve(7), 100, 5000)).resolves.toBe(7);
    await expect(withStallAwareTimeout(Promise.reject(new Error('boom')), 100, 5000)).rejects.toThrow('boom');
  });

  it('does not count a stall of the process: an answer that arrived meanwhile wins (plain setTimeout loses)', async () => {
    // A socket answer that lands while the process cannot run: after the stall, Node runs expired timers
    // before it reads sockets, so a wall-clock timeout of the same budget fires first.
    const server = createServer(socket => socket.on('data', d => socket.write(d)));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
    await once(client, 'connect');
    try {
      const answer = (): Promise<unknown> => {
        client.write('ping');
        return once(client, 'data');
      };
      const plain = Promise.race([
        answer(),
        new Promise((_, reject) => setTimeout(() => reject(new Error('wall-clock timeout')), 100)),
      ]);
      stall(400);
      await expect(plain).rejects.toThrow('wall-clock timeout');

      const aware = withStallAwareTimeout(answer(), 100, 5000);
      stall(400);
      await expect(aware).resolves.toBeDefined();
    } finally {
      client.destroy();
      server.close();
    }
  });

  it('is bounded by its cap in wall time even when the process keeps stalling', async () => {
    const never = new Promise<never>(() => {});
    // The assertion is attached first: the rejection may come during the loop.
    const result = expect(withStallAwareTimeout(never, 10_000, 300)).rejects.toBeInstanceOf(
      StallAwareTimeoutError,
    );
    for (let i = 0; i < 8; i++) {
      stall(60);
      await new Promise(r => setTimeout(r, 1));
    }
    await result;
  });
});
