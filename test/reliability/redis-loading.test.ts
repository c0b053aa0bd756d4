import { afterAll, describe, expect, it } from 'vitest';

// @ts-expect-error plain JavaScript helper shared with the demo
import { freePort } from '../../scripts/lib/local-redis.mjs';
import { runJtm, startJtm } from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { redisCli, startServer, type Server } from './servers.js';

const free = freePort as () => Promise<number>;

/*
 * A Redis that restarts loads its dataset first (a site's AOF: minutes) and answers LOADING meanwhile. The CLI's
 * bounds (JTM_CONNECT_TIMEOUT, counted from the command's start; the isalive retry) hold then too: a command
 * that had given up stayed until the load was over, on a timer of ioredis's own (adversary 15 P9).
 */
describe('a Redis loading its dataset', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    for (const s of servers) await s.stop();
  });

  it('CLI commands end within their bounds while Redis still loads', async () => {
    const dir = tempDir('jtm-loading-');
    const port = await free();
    const base = [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--dir',
      dir,
      '--save',
      '',
      '--appendonly',
      'no',
    ];
    const loaded = (): boolean => {
      try {
        return /^loading:0/m.test(redisCli(['-p', String(port), 'info', 'persistence']));
      } catch {
        return false;
      }
    };
    const first = await startServer([...base, '--enable-debug-command', 'yes'], port, loaded);
    redisCli(['-p', String(port), 'debug', 'populate', '20000']);
    redisCli(['-p', String(port), 'save']);
    await first.stop();
    // 20,000 keys at 1 ms each: a load of about 20 s, answering LOADING every kilobyte loaded.
    const loading = (): boolean => {
      try {
        return /^loading:1/m.test(redisCli(['-p', String(port), 'info', 'persistence']));
      } catch {
        return false;
      }
    };
    servers.push(
      await startServer(
        [...base, '--key-load-delay', '1000', '--loading-process-events-interval-bytes', '1024'],
        port,
        loading,
      ),
    );
    const env = testEnv({
      REDIS_URL: `redis://127.0.0.1:${port}`,
      JTM_CONNECT_TIMEOUT: '1s',
      JTM_ISALIVE_RETRY: '1s',
    });
    // ioredis's own timer (the load's estimated time, up to 10 s) held the process ≈ 10 s past its failure: the
    // bound below (twice the timeout and a slow start, not the load's 20 s) tells the two apart.
    const t0 = Date.now();
    const status = await runJtm(['status', '-tid', '1'], env);
    expect(Date.now() - t0, status.stderr).toBeLessThan(6000);
    expect(status.code, status.stderr).toBe(255);
    // Named (adversary 24 F8: "cannot reach Redis (no answer within …)", though Redis answered LOADING).
    expect(status.stderr).toMatch(/^jtm status: Redis at \S+ is loading its dataset \(LOADING /);
    expect(loading(), 'Redis still loading as status ended').toBe(true);
    const isalive = await runJtm(['isalive', '-tid', '1'], env);
    expect(isalive.stdout.trim(), isalive.stderr).toBe('unknown');
    expect(loading(), 'Redis still loading as isalive ended').toBe(true);
    // A daemon waits, and says why in Redis's words ("does not answer yet", no reason given, before).
    const worker = startJtm(['worker', '-p', 'loading'], env);
    try {
      await waitFor(
        () => /does not answer yet \(is loading its dataset: LOADING /.test(worker.output()),
        'the worker to say Redis is loading',
        10_000,
      );
    } finally {
      await worker.stop('SIGKILL');
    }
    expect(loading(), 'Redis still loading as the worker said so').toBe(true);
  });
});
