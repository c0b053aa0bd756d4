// Redis answering a command with an error is Redis being unusable (exit 255), never an answer about the task:
// kill's, status's and isalive's exit 1 means "no such id" (adversarial test 3: `jtm kill` as an ACL user
// refused a command inside a script exited 1, "invalid id").
import { describe, expect, it } from 'vitest';

import { runJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { waitFor } from '../helpers/env.js';
import { start } from '../helpers/tracked.js';
import { usePrivateContext } from '../helpers/local-redis.js';

describe('Redis refusing a command', () => {
  const p = usePrivateContext();

  it('a command refused inside a script (an ACL user): 255, the credentials named', async () => {
    await p.ctx.redis.call('ACL', 'SETUSER', 'nohash', 'on', '>pw', '~*', '&*', '+@all', '-hset');
    const [id] = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'refusals'], p.env)).stdout);
    const as = { ...p.env, REDIS_URL: p.env['REDIS_URL']!.replace('redis://', 'redis://nohash:pw@') };
    const r = await runJtm(['kill', '-tid', String(id)], as);
    expect(r.code).toBe(255);
    expect(r.stderr).toMatch(
      /^jtm kill: Redis at redis:\/\/nohash:\*\*\*@127\.0\.0\.1:\d+ refused JTM .*ACL rights\n$/,
    );
  });

  it('an error reply (out of memory): 255 REDIS_REFUSED, and reads still answer', async () => {
    const [id] = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'refusals'], p.env)).stdout);
    await p.ctx.redis.config('SET', 'maxmemory', '1');
    try {
      // Tried again for JTM_KILL_RETRY (below), then given up.
      const r = await runJtm(['kill', '-tid', String(id), '--json'], { ...p.env, JTM_KILL_RETRY: '1s' });
      expect(r.code).toBe(255);
      expect(JSON.parse(r.stdout || r.stderr)).toMatchObject({
        error: { code: 'REDIS_REFUSED', exit_code: 255 },
      });
      expect((await runJtm(['status', '-tid', String(id)], p.env)).stdout.trim()).toBe('pending');
    } finally {
      await p.ctx.redis.config('SET', 'maxmemory', '0');
    }
  });

  it('a kill refused because Redis is full is tried again within JTM_KILL_RETRY: memory freed meanwhile, the task is killed (adversary 37 F2: exit 255 at once, the abort dropped, the task ran to its end)', async () => {
    const [id] = taskIds((await runJtm(['submit', '-cmd', 'true', '-p', 'refusals-oom'], p.env)).stdout);
    await p.ctx.redis.config('SET', 'maxmemory', '1');
    let freed = false;
    try {
      const kill = runJtm(['kill', '-tid', String(id)], { ...p.env, JTM_KILL_RETRY: '30s' });
      await new Promise(r => setTimeout(r, 1500));
      await p.ctx.redis.config('SET', 'maxmemory', '0');
      freed = true;
      const r = await kill;
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect((await runJtm(['status', '-tid', String(id)], p.env)).stdout.trim()).toBe('terminated');
    } finally {
      if (!freed) await p.ctx.redis.config('SET', 'maxmemory', '0');
    }
  });

  it('a Redis that refuses writes for longer than the lease: the stopped run is given back once writes pass again', async () => {
    // Before: the give-back was refused (OOM) and dropped, the heartbeat came back, and the task stayed
    // `running` on a live worker with no process, for ever (adversarial test 4). Refused here as a master short of
    // replicas refuses (NOREPLICAS: every write, the alive key's PEXPIRE too); a full Redis (OOM) still takes that
    // PEXPIRE, and its workers keep their runs (redis-full.test.ts).
    const worker = start(['worker', '-p', 'oomend'], p.env);
    await waitWorkers(p.env, 'oomend');
    const [id] = taskIds(
      (await runJtm(['submit', '-cmd', 'sleep 2.5; echo done', '-p', 'oomend'], p.env)).stdout,
    );
    await waitFor(async () => (await p.ctx.tasks.status(id!)) === 3 || undefined, 'running');
    await p.ctx.redis.config('SET', 'min-replicas-to-write', '1');
    try {
      // Beats every 500 ms: the lease (3 beats) lapses, the worker stops the run and cannot record it.
      await waitFor(() => /heartbeat lease/.test(worker.output()) || undefined, 'the run stopped', 10_000);
      await new Promise(r => setTimeout(r, 3000));
    } finally {
      await p.ctx.redis.config('SET', 'min-replicas-to-write', '0');
    }
    await waitFor(
      async () => (await p.ctx.tasks.status(id!)) === 4 || undefined,
      `the task to run again and succeed: ${JSON.stringify(await p.ctx.tasks.events(id!))}`,
      40_000,
    );
    expect(worker.output()).toMatch(/Redis refuses writes: the task's end is written again/);
    await worker.stop();
  }, 60_000);

  it('a worker whose password is revoked says so once per window, not at every beat', async () => {
    await p.ctx.redis.call('ACL', 'SETUSER', 'wk', 'on', '>pw', '~*', '&*', '+@all');
    const as = { ...p.env, REDIS_URL: p.env['REDIS_URL']!.replace('redis://', 'redis://wk:pw@') };
    const worker = start(['worker', '-p', 'revoked'], as);
    await waitWorkers(as, 'revoked');
    // Started: registered and subscribed (refused credentials during the start end it, exit 255, by design).
    await waitFor(() => /worker started/.test(worker.output()) || undefined, 'worker started');
    await p.ctx.redis.call('ACL', 'SETUSER', 'wk', 'resetpass', '>pw2');
    await p.ctx.redis.call('CLIENT', 'KILL', 'USER', 'wk');
    // Beats every 500 ms (testEnv): eight or more failed in 4 s, each logged before. (A beat may also wait
    // for the connection instead of failing: then the connection's own error is the line.)
    await new Promise(r => setTimeout(r, 4500));
    const refusals = worker
      .output()
      .split('\n')
      .filter(l => l.includes('WRONGPASS'))
      .map(l => {
        try {
          return (JSON.parse(l) as { msg: string }).msg;
        } catch {
          throw new Error(`not a log line (the worker exited?): ${worker.output()}`);
        }
      });
    expect(refusals.length).toBeGreaterThan(0);
    // One line per kind (connection error, worker error, heartbeat failed), not one per beat.
    expect(refusals.length).toBe(new Set(refusals).size);
  }, 30_000);

  it('a kill whose message to the worker is refused (no PUBLISH) still kills, at the next beat, and says so', async () => {
    await p.ctx.redis.call('ACL', 'SETUSER', 'nopub', 'on', '>pw', '~*', '&*', '+@all', '-publish');
    const worker = start(['worker', '-p', 'nopub'], p.env);
    await waitWorkers(p.env, 'nopub');
    const [id] = taskIds((await runJtm(['submit', '-cmd', 'sleep 60', '-p', 'nopub'], p.env)).stdout);
    await waitFor(async () => (await p.ctx.tasks.status(id!)) === 3 || undefined, 'running');
    const as = { ...p.env, REDIS_URL: p.env['REDIS_URL']!.replace('redis://', 'redis://nopub:pw@') };
    const r = await runJtm(['kill', '-tid', String(id)], as);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/its next heartbeat/);
    expect(await p.ctx.tasks.status(id!)).toBe(-4);
    await worker.stop();
  }, 30_000);
});
