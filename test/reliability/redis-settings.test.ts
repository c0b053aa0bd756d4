// The settings of Redis that lose tasks are said at start, by the manager and by each worker (docs/reliability.md):
// an eviction policy (adversary 13 E5: allkeys-lru evicted running tasks' records, isalive answered no, and
// nothing had said so) and no append-only file.
import { describe, expect, it } from 'vitest';

import { startJtm } from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { startPlainRedis } from './servers.js';

const EVICTS = /Redis evicts keys when it is full \(maxmemory-policy allkeys-lru\)/;
const NO_AOF = /Redis runs without an append-only file/;

describe.concurrent('Redis settings that lose tasks are said at start', () => {
  it('an eviction policy and appendonly no: the manager and a worker warn about both', async () => {
    const server = await startPlainRedis(['--maxmemory', '200mb', '--maxmemory-policy', 'allkeys-lru']);
    const env = testEnv({ REDIS_URL: `redis://127.0.0.1:${server.port}` });
    const manager = startJtm(['manager'], env);
    const worker = startJtm(['worker', '-p', 'evicts'], env);
    try {
      for (const p of [manager, worker]) {
        await waitFor(
          () => (EVICTS.test(p.output()) && NO_AOF.test(p.output())) || undefined,
          'the warnings',
        );
        expect(p.output()).toMatch(/"level":40,[^\n]*"maxmemory_policy":"allkeys-lru"/);
      }
    } finally {
      await Promise.all([manager.stop(), worker.stop()]);
      await server.stop();
    }
  });

  it('noeviction and appendonly yes: neither warns', async () => {
    // Its append-only files in a directory of its own, not in the checkout (the server's working directory).
    const server = await startPlainRedis([
      ...['--maxmemory-policy', 'noeviction', '--appendonly', 'yes'],
      ...['--dir', tempDir('jtm-aof-')],
    ]);
    const env = testEnv({ REDIS_URL: `redis://127.0.0.1:${server.port}` });
    const worker = startJtm(['worker', '-p', 'keeps'], env);
    try {
      await waitFor(() => /worker started/.test(worker.output()) || undefined, 'the worker');
      await new Promise(r => setTimeout(r, 500));
      expect(worker.output()).not.toMatch(EVICTS);
      expect(worker.output()).not.toMatch(NO_AOF);
    } finally {
      await worker.stop();
      await server.stop();
    }
  });
});
