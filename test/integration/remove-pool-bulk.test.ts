import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { TaskStatus } from '../../src/tasks/status.js';
import { runJtm, taskIds } from '../helpers/cli.js';
import { tempDir } from '../helpers/env.js';
import { usePrivateContext } from '../helpers/local-redis.js';

/*
 * D8 of the adversarial test: remove-pool ended waiting tasks one script run each (50,000 tasks: 74 s). They
 * end in batches now, with the same outcome: each terminated once, the rc file written where there is one.
 */
describe('remove-pool of many waiting tasks', () => {
  // A redis-server of its own: the script runs counted are the server's, which other test files running at the
  // same time would add to on the shared one.
  const p = usePrivateContext();

  const scriptRuns = async (): Promise<number> => {
    const stats = await p.ctx.redis.info('commandstats');
    const calls = (name: string): number =>
      Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    return calls('evalsha') + calls('eval');
  };

  it('ends 2,000 waiting tasks in a few script runs; each terminated, rc 75 written where asked', async () => {
    const dir = tempDir('jtm-rmbulk-');
    const n = 2000;
    const lines = Array.from({ length: n }, (_, i) =>
      JSON.stringify({
        command: 'true',
        pool: { name: 'bulk' },
        ...(i < 3 ? { rc_file: join(dir, `rc${i}`) } : {}),
      }),
    );
    const file = join(dir, 'tasks.jsonl');
    writeFileSync(file, `${lines.join('\n')}\n`);
    const ids = taskIds((await runJtm(['submit', '-f', file], p.env, { timeoutMs: 60_000 })).stdout);
    expect(ids).toHaveLength(n);

    const before = await scriptRuns();
    const r = await runJtm(['remove-pool', '-p', 'bulk', '--json'], p.env, { timeoutMs: 60_000 });
    const runs = (await scriptRuns()) - before;
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { terminated: number[]; left_running: number[] };
    expect([...out.terminated].sort((a, b) => a - b)).toEqual(ids);
    expect(out.left_running).toEqual([]);
    // One script run per 1,000 tasks (and BullMQ's own for the queue), not one per task.
    expect(runs).toBeLessThan(200);

    const read = p.ctx.redis.pipeline();
    for (const id of ids) read.hget(p.ctx.keys.task(id), 'status');
    const statuses = ((await read.exec()) ?? []).map(([, v]) => Number(v));
    expect(statuses.every(s => s === TaskStatus.terminated)).toBe(true);
    for (let i = 0; i < 3; i++) expect(readFileSync(join(dir, `rc${i}`), 'utf8').trim()).toBe('75');
    expect(existsSync(join(dir, 'rc3'))).toBe(false);
  });

  it('a removal refused half way is finished by the next; a refused read changes nothing', async () => {
    // ACL users that lack what the removal needs: the same paths as a connection lost mid-way (adversarial
    // test 3: the registry entry was gone, the waiting tasks stayed pending, and the next removal answered
    // "unknown pool").
    await p.ctx.redis.call('ACL', 'SETUSER', 'noscript', 'on', '>pw', '~*', '&*', '+@all', '-@scripting');
    await p.ctx.redis.call('ACL', 'SETUSER', 'nohash', 'on', '>pw', '~*', '&*', '+@all', '-hmget');
    const as = (user: string): Record<string, string> => ({
      ...p.env,
      REDIS_URL: p.env['REDIS_URL']!.replace('redis://', `redis://${user}:pw@`),
    });
    const ids = taskIds(
      (await runJtm(['submit', '-cmd', 'true', '-p', 'half'], p.env)).stdout +
        (await runJtm(['submit', '-cmd', 'true', '-p', 'half'], p.env)).stdout,
    );
    // A read refused: nothing is done, and the command says why (it went on as if the pool had no task).
    const r1 = await runJtm(['remove-pool', '-p', 'half'], as('nohash'));
    expect(r1.code).toBe(255);
    expect(r1.stderr).toMatch(/NOPERM.*hmget/);
    // Worded as a wrong password is, naming the server (adversary 15 P11e: "Redis at REDIS_URL refused JTM").
    expect(r1.stderr).toMatch(
      /^jtm remove-pool: Redis at redis:\/\/nohash:\*\*\*@127\.0\.0\.1:\d+ refused JTM \(NOPERM/,
    );
    expect(await p.ctx.redis.sismember(p.ctx.keys.pools, 'half')).toBe(1);
    // A write refused after the registry entry went: the next removal finishes the job.
    const r2 = await runJtm(['remove-pool', '-p', 'half'], as('noscript'));
    expect(r2.code).toBe(255);
    expect(await p.ctx.redis.sismember(p.ctx.keys.pools, 'half')).toBe(0);
    expect(await p.ctx.tasks.status(ids[0]!)).not.toBe(TaskStatus.terminated);
    const r3 = await runJtm(['remove-pool', '-p', 'half', '--json'], p.env);
    expect(r3.code).toBe(0);
    expect((JSON.parse(r3.stdout) as { terminated: number[] }).terminated.sort()).toEqual(ids);
    // Then it is gone: unknown.
    const r4 = await runJtm(['remove-pool', '-p', 'half'], p.env);
    expect([r4.code, r4.stdout.trim()]).toEqual([1, 'failed']);
  });
});
