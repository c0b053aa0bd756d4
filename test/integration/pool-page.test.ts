import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { poolTaskIds } from '../../src/dashboard/pool-page.js';
import { runJtm, startJtm, statusOf, taskIds, waitWorkers, type BackgroundProcess } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { usePrivateRedis } from '../helpers/local-redis.js';

/*
 * D7 of the adversarial test: the dashboard's pool page read every task record in Redis (70,000 records: one
 * view took 5 s and 71,000 commands). It reads the pool's queue and its recent-ends index only.
 */
describe('pool page reads in proportion to the pool', () => {
  // A redis-server of its own: the count of commands the page costs is the server's total, which the other test
  // files running at the same time would add to on the shared one (seen: 2,062 instead of < 300).
  const startRedis = usePrivateRedis();
  let env: Record<string, string>;
  let ctx: JtmContext;
  let worker: BackgroundProcess | undefined;
  let dashboard: BackgroundProcess | undefined;
  beforeAll(async () => {
    env = testEnv({ REDIS_URL: (await startRedis()).url });
    ctx = await openTestContext(env);
  });
  afterAll(async () => {
    await worker?.stop();
    await dashboard?.stop();
    await closeContext(ctx);
  });

  const commandsProcessed = async (): Promise<number> =>
    Number(/total_commands_processed:(\d+)/.exec(await ctx.redis.info('stats'))?.[1]);

  it('shows the last hour of the pool from its queue and recent ends, not from a scan of every record', async () => {
    worker = startJtm(['worker', '-p', 'pp', '--slots', '4'], env);
    await waitWorkers(env, 'pp', 4);
    const ok = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'pp'], env)).stdout);
    const ok2 = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'pp'], env)).stdout);
    const bad = taskIds((await runJtm(['submit', '-cmd', 'exit 3', '-p', 'pp'], env)).stdout);
    const ended = [...ok, ...ok2, ...bad];
    for (const id of ended)
      await waitFor(
        async () => (await statusOf(env, id)) !== 'queued' && (await statusOf(env, id)) !== 'running',
        `task ${id} ends`,
      );
    await worker.stop();
    worker = undefined;
    // A task still waiting (no worker left), and 3,000 records of another pool, which the page must not read.
    const waiting = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'pp'], env)).stdout);
    const now = Date.now();
    const noise = ctx.redis.pipeline();
    for (let i = 0; i < 3000; i++) {
      const id = 10_000_000 + i;
      noise.hset(ctx.keys.task(id), { id, pool: 'noise', status: 4, queued_at: now, ended_at: now });
    }
    await noise.exec();

    expect(await poolTaskIds(ctx, 'pp', Date.now())).toEqual([...ended, ...waiting].sort((a, b) => a - b));

    dashboard = startJtm(['dashboard', '--port', '0'], env);
    const url = await waitFor(
      () => /dashboard listening on (http:\/\/\S+)/.exec(dashboard!.output())?.[1],
      'dashboard listening',
      30_000,
    );
    const before = await commandsProcessed();
    const html = await (await fetch(new URL('pool?name=pp', url))).text();
    const spent = (await commandsProcessed()) - before;
    const twice = await fetch(new URL('pool?name=pp&name=other', url));
    expect(twice.status).toBe(400);
    expect(await twice.text()).toMatch(/given more than once/);
    // The page's own reads: the pool registry, the queue ranges, the index, ~5 records (it was > 3,000).
    expect(spent).toBeLessThan(300);
    const series = JSON.parse(
      /<script type="application\/json" id="pool-series">([^<]*)<\/script>/.exec(html)![1]!,
    ) as { finished: number[]; failed: number[]; queued: number[] };
    const sum = (a: number[]): number => a.reduce((x, y) => x + y, 0);
    expect(sum(series.finished)).toBe(2);
    expect(sum(series.failed)).toBe(1);
    expect(series.queued.at(-1)).toBe(1);
  });
});
