// A fetch whose answer a dropped connection lost (adversary 30 F3): Redis made the job active under the worker's
// lock, ioredis sent the fetch again on the new connection, and the first job was known to no one — its task stayed
// pending, slots free, until its lock lapsed and BullMQ's stalled check gave it back (39 s in the adversary's run;
// up to JTM_LOCK_DURATION + JTM_STALLED_INTERVAL, 45 s by default). The worker now puts it back once reconnected.
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';

import { describe, expect, it } from 'vitest';

import { runJtm, startJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext, waitFinalRecord } from '../helpers/context.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { startPlainRedis } from './servers.js';

/**
 * A proxy in front of Redis that, once armed, passes on the first script run that names the queue's marker key (a
 * fetch: BullMQ's moveToActive) and then cuts that connection before Redis's answer reaches the client.
 */
async function fetchCutter(redisPort: number) {
  let armed = false;
  let cut = 0;
  const sockets = new Set<Socket>();
  const server = createServer(client => {
    const upstream = connect(redisPort, '127.0.0.1');
    let dropReplies = false;
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      if (armed && chunk.includes('evalsha') && chunk.includes(':marker')) {
        armed = false;
        dropReplies = true;
        // Redis has run the fetch by then; its answer is dropped and the connection reset.
        setTimeout(() => {
          cut++;
          client.resetAndDestroy();
          upstream.destroy();
        }, 200);
      }
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!dropReplies) client.write(chunk);
    });
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
  return {
    url: `redis://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arm: () => (armed = true),
    cuts: () => cut,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise(r => server.close(r));
    },
  };
}

describe('a fetch whose answer was lost', () => {
  it('is put back in the queue once the worker has reconnected: the task runs in seconds, once, not after the lock and the stalled check', async () => {
    const redis = await startPlainRedis();
    const proxy = await fetchCutter(redis.port);
    const direct = testEnv({ REDIS_URL: `redis://127.0.0.1:${redis.port}` });
    // Defaults for the lock (30 s) and the stalled check (15 s): what the task waited for before.
    const worker = startJtm(['worker', '-p', 'lf', '--slots', '1'], { ...direct, REDIS_URL: proxy.url });
    const ctx = await openTestContext(direct);
    try {
      await waitWorkers(direct, 'lf');
      // The worker waits in its blocking fetch; the submit wakes it and its fetch is the next script it runs.
      proxy.arm();
      const submitted = Date.now();
      const [id] = taskIds((await runJtm(['submit', '-p', 'lf', '-cmd', 'true'], direct)).stdout);
      await waitFor(() => proxy.cuts() > 0 || undefined, 'the fetch to be cut', 10_000);
      const record = await waitFinalRecord(ctx, id!, 60_000);
      const waited = Date.now() - submitted;
      expect(record.status, worker.output().slice(-3000)).toBe(TaskStatus.success);
      expect(record.attempts).toBe(1);
      // Reconnect (≈ 0.1-1 s) + the settle delay (2 s) + the run; 30 s or more before.
      expect(waited, worker.output().slice(-3000)).toBeLessThan(15_000);
      expect(worker.output()).toMatch(/a job fetched as this worker's connection dropped .* was put back/);
    } finally {
      await closeContext(ctx);
      await worker.stop();
      await proxy.close();
      await redis.stop();
    }
  }, 90_000);
});
