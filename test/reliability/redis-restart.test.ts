import { cpSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';

import {
  runJtm,
  startJtm,
  taskIds,
  type BackgroundProcess,
  waitStatus,
  waitWorkers,
} from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { type LocalRedis, startRedis as start } from '../helpers/local-redis.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { Keys } from '../../src/redis/keys.js';
import { TaskStatus } from '../../src/tasks/status.js';

interface Outage {
  /** The server's data directory: a restart on it (same port) finds what the server had written. */
  dir: string;
  redis?: LocalRedis;
  worker?: BackgroundProcess;
}

/** A suite's server and worker, killed after it whatever a test left running (or stopped). */
function useOutage(prefix: string): Outage {
  const outage: Outage = { dir: tempDir(prefix) };
  afterAll(async () => {
    await outage.worker?.stop('SIGKILL');
    await outage.redis?.stop('SIGKILL');
  });
  return outage;
}

/** `n` one-task submits of `true` to `pool`, one after the other, each exit 0: their ids. */
async function submitEach(env: Record<string, string>, pool: string, n: number): Promise<number[]> {
  const ids: number[] = [];
  for (let i = 0; i < n; i++) {
    const r = await runJtm(['submit', '-cmd', 'true', '-p', pool], env);
    expect(r.code, r.stderr).toBe(0);
    ids.push(...taskIds(r.stdout));
  }
  return ids;
}

/** AOF on, fsync once a second: the production setting the docs recommend. */
const AOF = ['--appendonly', 'yes', '--appendfsync', 'everysec'];

describe('Redis killed -9 and restarted on the same data', () => {
  const outage = useOutage('jtm-aof-');

  it('keeps every task accepted before the last fsync, fails CLI commands fast, and workers reconnect by themselves', async () => {
    const redis = (outage.redis = await start({ dir: outage.dir, args: AOF }));
    const port = redis.port;
    const env = testEnv({ REDIS_URL: redis.url, JTM_CONNECT_TIMEOUT: '1s', JTM_ISALIVE_RETRY: '1s' });
    const worker = (outage.worker = startJtm(['worker', '-p', 'aof', '--slots', '4'], env));
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

    outage.redis = await start({ dir: outage.dir, port, args: AOF });
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

/*
 * A worker's BullMQ 'error' events during an outage (ECONNREFUSED on each reconnect attempt of each of its
 * connections, twice every 0.5–2 s) go through the logger's rate limit: one line per kind and
 * JTM_LOG_REPEAT_INTERVAL, the next one with the count of those left out.
 */
describe('a worker during a Redis outage', () => {
  const outage = useOutage('jtm-outage-');

  it('logs its connection errors once per kind and interval, the later line with a repeated count', async () => {
    const redis = (outage.redis = await start({ dir: outage.dir }));
    const port = redis.port;
    const env = testEnv({ REDIS_URL: redis.url, JTM_LOG_REPEAT_INTERVAL: '3s' });
    const worker = (outage.worker = startJtm(['worker', '-p', 'outage'], env));
    await waitWorkers(env, 'outage');
    await redis.stop('SIGKILL');
    const down = Date.now();
    const errorLines = (): Record<string, unknown>[] =>
      worker
        .output()
        .split('\n')
        .filter(l => l.includes('"msg":"worker error"'))
        .map(l => JSON.parse(l) as Record<string, unknown>);
    // An outage of ~5 s: past one interval (3 s), so that a repeat after it logs a second line with the count.
    await waitFor(
      () => Date.now() - down >= 5000 && errorLines().length >= 2,
      'a 5 s outage and a second worker error line',
      30_000,
      100,
    );
    outage.redis = await start({ dir: outage.dir, port });
    await waitWorkers(env, 'outage');
    const lines = errorLines();
    // Before the fix: a line per reconnect attempt of each connection (~10 in 5 s). Now two kinds at most
    // (refused, closed), each at most once per 3 s window of the outage.
    expect(lines.length).toBeLessThanOrEqual(4);
    expect(lines.some(l => typeof l['repeated'] === 'number' && l['repeated'] > 0)).toBe(true);
    // Routine: warnings with the error's message, no stack (adversary 30 F4: errors with BullMQ's stack).
    for (const l of lines) expect([l['level'], typeof l['err']]).toEqual([40, 'string']);
    expect(worker.child.exitCode).toBeNull();
  }, 90_000);
});

/**
 * Adversary 29 F1: a Redis back from an older copy of its data (a restart from an older AOF, a failover to a
 * lagging replica) has its id counter back too. Submits made while it was down wait for it (JTM_SUBMIT_RETRY)
 * and all land in its first second back, before any manager's sweep: 15 of 24 got the ids of lost calls, which
 * Cromwell still held. The first ids a Redis hands out after its run id changed come past a margin.
 */
describe('Redis back from an older copy of its data, no manager', () => {
  const outage = useOutage('jtm-rollback-');

  it('hands out no id twice: submits retried through the outage get ids past the lost ones', async () => {
    const redis = (outage.redis = await start({ dir: outage.dir, args: AOF }));
    const port = redis.port;
    const env = testEnv({ REDIS_URL: redis.url, JTM_CONNECT_TIMEOUT: '1s', JTM_SUBMIT_RETRY: '20s' });
    const submit = (n: number): Promise<number[]> => submitEach(env, 'rollback', n);
    const early = await submit(2);
    // Past the next everysec fsync: the copy holds the first two.
    await new Promise(r => setTimeout(r, 1500));
    const copy = tempDir('jtm-rollback-copy-');
    cpSync(join(outage.dir, 'appendonlydir'), join(copy, 'appendonlydir'), { recursive: true });
    const lost = await submit(3);
    expect([...early, ...lost]).toEqual([1, 2, 3, 4, 5]);
    await new Promise(r => setTimeout(r, 1500));
    await redis.stop('SIGKILL');
    rmSync(join(outage.dir, 'appendonlydir'), { recursive: true });
    cpSync(join(copy, 'appendonlydir'), join(outage.dir, 'appendonlydir'), { recursive: true });
    // Three submits while Redis is down, retried until it is back.
    const during = [submit(1), submit(1), submit(1)];
    await new Promise(r => setTimeout(r, 1500));
    outage.redis = await start({ dir: outage.dir, port, args: AOF });
    const after = (await Promise.all(during)).flat();
    // Before: ids 3, 4 and 5 again.
    for (const id of after) expect(id).toBeGreaterThan(5);
    expect(new Set(after).size).toBe(3);
  }, 90_000);
});

/**
 * Adversary 29 F2: with the heartbeat at its defaults, a Redis restart of 1.7–2.1 s stopped and re-ran every
 * running task when it came just before a beat: the lease (6 s) runs from the last beat that succeeded, which
 * could be 2 s old when the outage began, and the runs are stopped a fencing margin (2 s) before it ends; the
 * worker's reconnects also came 200 ms × attempt apart (at 2 s, then 3 s). Beats 1 s apart (× 6, the same lease)
 * and reconnects at most 1 s apart keep such a restart from stopping anything. Killed here at the worst moment:
 * just before the next beat (read from the alive key's TTL, which each beat resets).
 */
describe('a Redis restart of about 2 s, the heartbeat at its defaults', () => {
  const outage = useOutage('jtm-restart-2s-');

  it('stops no running task, even when it comes just before a beat', async () => {
    const redis = (outage.redis = await start({
      dir: outage.dir,
      args: [...AOF.slice(0, 2), '--appendfsync', 'always'],
    }));
    const port = redis.port;
    const env = testEnv({ REDIS_URL: redis.url });
    // The defaults, not the suite's shorter heartbeat.
    delete env['JTM_HEARTBEAT_INTERVAL'];
    delete env['JTM_MISSED_BEATS'];
    const worker = (outage.worker = startJtm(
      ['worker', '-p', 'r2s', '--slots', '2', '--worker_id', 'restart-2s'],
      env,
    ));
    await waitWorkers(env, 'r2s');
    const marker = join(env['JTM_LOG_DIR']!, 'starts');
    const ids: number[] = [];
    for (let i = 0; i < 2; i++) {
      const r = await runJtm(['submit', '-cmd', `echo S >> ${marker}.${i}; sleep 30`, '-p', 'r2s'], env);
      ids.push(...taskIds(r.stdout));
    }
    const ctx = await openTestContext(env);
    try {
      await waitFor(
        async () => (await Promise.all(ids.map(id => ctx.tasks.get(id)))).every(t => t?.pid),
        'both running',
      );
      // The beat period, from two resets of the alive key's TTL; then the kill just before the next one.
      const alive = new Keys(env['JTM_PREFIX']!).workerAlive('restart-2s');
      const nextReset = async (): Promise<number> => {
        let last = await ctx.redis.pttl(alive);
        for (;;) {
          await new Promise(r => setTimeout(r, 10));
          const now = await ctx.redis.pttl(alive);
          if (now > last) return Date.now();
          last = now;
        }
      };
      await nextReset();
      const t1 = await nextReset();
      const t2 = await nextReset();
      await new Promise(r => setTimeout(r, Math.max(0, t2 + (t2 - t1) - 150 - Date.now())));
      await redis.stop('SIGKILL');
      const down = Date.now();
      await new Promise(r => setTimeout(r, 2200 - (Date.now() - down)));
      outage.redis = await start({
        dir: outage.dir,
        port,
        args: [...AOF.slice(0, 2), '--appendfsync', 'always'],
      });
      // Past the lease: a run stopped by the outage has been given back and started again by now.
      await new Promise(r => setTimeout(r, 7000));
      for (let i = 0; i < 2; i++) expect(readFileSync(`${marker}.${i}`, 'utf8')).toBe('S\n');
      for (const id of ids)
        expect(await ctx.tasks.get(id)).toMatchObject({ status: TaskStatus.running, attempts: 1 });
      expect(worker.output()).not.toMatch(/stopping the running tasks/);
    } finally {
      await closeContext(ctx);
    }
  }, 90_000);
});

/**
 * Adversary 30 F1: a Redis can go back in time without a restart, its run id unchanged: made a replica of a stale
 * node (a Sentinel failback after a partition: its writes since are discarded by the full resync) and promoted
 * again. Ids 4–6 were handed out again, with or without a manager. The guard keys on the replication id too.
 */
describe('a Redis demoted, resynced from a stale replica and promoted again (same process), no manager', () => {
  const outage = useOutage('jtm-failback-');

  it('hands out no id twice', async () => {
    const sync = ['--repl-diskless-sync-delay', '0', '--save', ''];
    const a = (outage.redis = await start({ dir: outage.dir, args: sync }));
    const c = await start({ args: sync });
    const ra = new Redis(a.url);
    const rc = new Redis(c.url);
    const env = testEnv({ REDIS_URL: a.url });
    const counterKey = new Keys(env['JTM_PREFIX']!).nextTaskId;
    const linked = async (r: Redis, what: string): Promise<void> => {
      await waitFor(
        async () => /master_link_status:up/.test(await r.info('replication')) || undefined,
        what,
        20_000,
        50,
      );
    };
    const submit = (n: number): Promise<number[]> => submitEach(env, 'failback', n);
    try {
      await rc.call('REPLICAOF', '127.0.0.1', String(a.port));
      await linked(rc, 'c replicating a');
      const early = await submit(3);
      await waitFor(
        async () => (await rc.get(counterKey)) === String(Math.max(...early)) || undefined,
        'c has the first ids',
      );
      await rc.call('REPLICAOF', 'NO', 'ONE'); // c is left behind
      const lost = await submit(4);
      // a rejoins as c's replica (its own writes since are discarded), then is promoted again: same process.
      await ra.call('REPLICAOF', '127.0.0.1', String(c.port));
      await linked(ra, 'a resynced from c');
      expect(await ra.get(counterKey)).toBe(String(Math.max(...early)));
      await ra.call('REPLICAOF', 'NO', 'ONE');
      const after = await submit(3);
      // Before: ids 4, 5 and 6 again.
      for (const id of after) expect(id).toBeGreaterThan(Math.max(...lost));
    } finally {
      ra.disconnect();
      rc.disconnect();
      await c.stop('SIGKILL');
    }
  }, 90_000);
});
