import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runJtm, startJtm, taskIds, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { startCluster } from './servers.js';

async function statusOf(env: Record<string, string>, id: number): Promise<string> {
  return (await runJtm(['status', '-tid', String(id)], env)).stdout.trim();
}

describe('Redis Cluster (3 masters, redis+cluster:// URL, {prefix} hash tag)', () => {
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  let env: Record<string, string>;
  let worker: BackgroundProcess | undefined;
  beforeAll(async () => {
    cluster = await startCluster();
    env = testEnv({ REDIS_URL: cluster.url });
  });
  afterAll(async () => {
    await worker?.stop('SIGKILL');
    await cluster?.stop();
  });

  it('runs submit, worker, status, isalive, check-worker and kill', async () => {
    worker = startJtm(['worker', '-p', 'cl', '--slots', '2'], env);
    await waitWorkers(env, 'cl', 2, 30_000);
    const r = await runJtm(['submit', '-cmd', 'echo on-cluster', '-p', 'cl'], env);
    expect(r.code).toBe(0);
    const [ok] = taskIds(r.stdout);
    const [bad] = taskIds((await runJtm(['submit', '-cmd', 'exit 4', '-p', 'cl'], env)).stdout);
    await waitFor(async () => (await statusOf(env, ok!)) === 'success', 'success on the cluster');
    await waitFor(async () => (await statusOf(env, bad!)) === 'failed', 'failed on the cluster');
    const [long] = taskIds((await runJtm(['submit', '-cmd', 'sleep 60', '-p', 'cl'], env)).stdout);
    await waitFor(async () => (await statusOf(env, long!)) === 'running', 'running');
    expect((await runJtm(['isalive', '-tid', String(long)], env)).stdout.trim()).toBe('yes');
    // A kill reaches the worker over pub/sub on the cluster.
    const k = await runJtm(['kill', '-tid', String(long)], env);
    expect(k.code).toBe(0);
    expect(await statusOf(env, long!)).toBe('terminated');
    const ctx = await openTestContext(env);
    try {
      expect(await ctx.tasks.get(bad!)).toMatchObject({ status: -2, exit_code: 4 });
    } finally {
      await closeContext(ctx);
    }
    expect(worker.output()).not.toMatch(/"level":(50|60)/);
    const stop = await worker.stop('SIGTERM');
    expect(stop).toBe(0);
    expect((await runJtm(['check-worker', '-p', 'cl'], env)).stdout.trim()).toBe('0');
  });
});
