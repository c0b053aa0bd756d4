import { afterAll, describe, expect, it } from 'vitest';

// @ts-expect-error plain JavaScript helper shared with the demo
import { startLocalRedis } from '../../scripts/lib/local-redis.mjs';
import {
  runJtm,
  startJtm,
  taskIds,
  type BackgroundProcess,
  waitStatus,
  waitWorkers,
} from '../helpers/cli.js';
import { tempDir, testEnv } from '../helpers/env.js';

interface LocalRedis {
  url: string;
  port: number;
  dir: string;
  stop: (signal?: NodeJS.Signals) => Promise<void>;
}
const start = startLocalRedis as (o: Record<string, unknown>) => Promise<LocalRedis>;

/** AOF on, fsync once a second: the production setting the docs recommend. */
const AOF = ['--appendonly', 'yes', '--appendfsync', 'everysec'];

describe('Redis killed -9 and restarted on the same data', () => {
  const dir = tempDir('jtm-aof-');
  let redis: LocalRedis | undefined;
  let worker: BackgroundProcess | undefined;
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await redis?.stop('SIGKILL');
  });

  it('keeps every task accepted before the last fsync, fails CLI commands fast, and workers reconnect by themselves', async () => {
    redis = await start({ dir, args: AOF });
    const port = redis.port;
    const env = testEnv({ REDIS_URL: redis.url, JTM_CONNECT_TIMEOUT: '1s', JTM_ISALIVE_RETRY: '1s' });
    worker = startJtm(['worker', '-p', 'aof', '--slots', '4'], env);
    await waitWorkers(env, 'aof');

    const accepted: number[] = [];
    for (let i = 0; i < 6; i++) {
      const r = await runJtm(['submit', '-cmd', `sleep 2; echo ${i}`, '-p', 'aof'], env);
      expect(r.code).toBe(0);
      accepted.push(...taskIds(r.stdout));
    }
    // Past the next everysec fsync: everything above is on disk.
    await new Promise(r => setTimeout(r, 2500));
    await redis.stop('SIGKILL');

    // The outage: one clear line and exit 255; isalive answers unknown with exit 0.
    const submit = await runJtm(['submit', '-cmd', 'true', '-p', 'aof'], env);
    expect([submit.code, submit.stdout]).toEqual([255, '']);
    expect(submit.stderr.trim()).toMatch(/^jtm submit: cannot reach Redis at redis:\/\/127\.0\.0\.1:\d+/);
    expect(submit.stderr.trim().split('\n')).toHaveLength(1);
    const status = await runJtm(['status', '-tid', String(accepted[0])], env);
    expect(status.code).toBe(255);
    expect(status.stderr.trim().split('\n')).toHaveLength(1);
    const alive = await runJtm(['isalive', '-tid', String(accepted[0])], env);
    expect([alive.stdout.trim(), alive.code]).toEqual(['unknown', 0]);
    expect(worker.child.exitCode).toBeNull();

    redis = await start({ dir, port, args: AOF });
    // Waited for in-process (a `jtm status` process every 500 ms cost more than the tasks); the command
    // itself answers once at the end.
    for (const id of accepted) await waitStatus(env, id, 'success', 60_000);
    // The same worker process, reconnected, takes new work.
    const [late] = taskIds((await runJtm(['submit', '-cmd', 'echo late', '-p', 'aof'], env)).stdout);
    await waitStatus(env, late!, 'success', 60_000);
    expect(await runJtm(['status', '-tid', String(accepted[0])], env)).toMatchObject({
      code: 1,
      stdout: 'success\n',
    });
    expect(worker.child.exitCode).toBeNull();
    expect(worker.output()).not.toMatch(/"level":60/);
  }, 240_000);
});
