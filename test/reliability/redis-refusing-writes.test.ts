// A Redis that answers every write with an error for a few seconds — BUSY (another client's slow script), MISCONF
// (its snapshot failing) — is out for every worker, as a silent one is (redis-pause.test.ts). A worker whose beats
// it refuses stops its runs before its lease can lapse (right), but it did not give them back: the read before the
// give-back was refused too and the run's end was dropped, so the job kept its lock until it lapsed and its
// redelivery took the task over as "worker … was lost", a retry spent on a live worker (adversary 24 F1); under
// MISCONF the give-back was counted as a lease loss, the worker's lateness (F6). Now: given back once Redis takes
// writes again, counted as one of Redis's silences, no retry spent.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { startJtm, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { expectGivenBackUncounted, startLongTask } from '../helpers/outage-episode.js';
import { redisCli, startPlainRedis } from './servers.js';
// @ts-expect-error plain JavaScript helper shared with the demo
import { freePort } from '../../scripts/lib/local-redis.mjs';

/** A port nothing listens on (the master the replica never reaches). */
const freePortNumber = freePort as () => Promise<number>;

/**
 * A worker with one long task, an episode of refusals (`refuse`, then `accept` 4 s later: past the worker's 1.5 s
 * lease), and the task's end: run again once, nothing charged.
 */
async function episode(
  refuse: (port: string, dir: string) => void,
  accept: (port: string, dir: string) => void,
  withManager = false,
) {
  const dir = tempDir('jtm-refusing-');
  // BUSY replies from 100 ms into a script (5 s by default).
  const server = await startPlainRedis(['--dir', dir, '--busy-reply-threshold', '100']);
  const port = String(server.port);
  // No retry to spend: a run charged as a loss ends lostconnection.
  const env = testEnv({ REDIS_URL: `redis://127.0.0.1:${port}`, JTM_TASK_RETRIES: '0' });
  const worker = startJtm(['worker', '-p', 'rw', '--slots', '1'], env);
  const manager = withManager ? startJtm(['manager'], env) : undefined;
  const ctx = await openTestContext(env);
  try {
    await waitWorkers(env, 'rw');
    const task = await startLongTask(env, ctx, 'rw', dir);
    refuse(port, dir);
    await new Promise(r => setTimeout(r, 4000));
    // Stopped before the lease could lapse (the worker cannot have renewed it), not after.
    expect(worker.output()).toMatch(/Redis has not answered for \d+ ms; stopping the running tasks/);
    accept(port, dir);
    await expectGivenBackUncounted(
      ctx,
      task,
      () => `worker: ${worker.output().slice(-3000)}; manager: ${manager?.output().slice(-3000)}`,
    );
  } finally {
    await closeContext(ctx);
    await worker.stop();
    await manager?.stop();
    await server.stop();
  }
}

describe('a Redis that refuses writes for a while', () => {
  it('BUSY (another client runs a long script): the run is given back once the script ends, no retry spent (adversary 24 F1)', async () => {
    await episode(busyScript, () => {});
  }, 150_000);

  it('BUSY with a manager sweeping: the worker is not declared dead for it, its run is given back uncounted', async () => {
    await episode(busyScript, () => {}, true);
  }, 150_000);

  it('MISCONF (its snapshot fails): the run is given back once Redis takes writes again, counted as an outage (adversary 24 F6)', async () => {
    await episode(
      (port, dir) => {
        // The snapshot cannot replace dump.rdb (a directory that is not empty): writes are refused until one succeeds.
        // MISCONF needs a save point (the server runs with none).
        mkdirSync(join(dir, 'dump.rdb', 'x'), { recursive: true });
        redisCli(['-p', port, 'CONFIG', 'SET', 'save', '3600 1']);
        redisCli(['-p', port, 'BGSAVE']);
        return waitForMisconf(port);
      },
      (port, dir) => {
        rmSync(join(dir, 'dump.rdb'), { recursive: true });
        redisCli(['-p', port, 'CONFIG', 'SET', 'stop-writes-on-bgsave-error', 'no']);
        redisCli(['-p', port, 'CONFIG', 'SET', 'save', '']);
      },
    );
  }, 150_000);

  it('READONLY (made a replica of a master it cannot reach, then a master again): given back uncounted (adversary 24 F6)', async () => {
    const nowhere = await freePortNumber();
    await episode(
      port => void redisCli(['-p', port, 'REPLICAOF', '127.0.0.1', String(nowhere)]),
      port => void redisCli(['-p', port, 'REPLICAOF', 'NO', 'ONE']),
    );
  }, 150_000);

  it('a beat refused BUSY is tried again within a quarter second: the worker is alive again as soon as Redis takes writes', async () => {
    // Beats every 2 s: before, the next beat came up to a whole interval after the script ended, and a manager sweep
    // in that gap found the alive key lapsed and charged the live worker's tasks a loss.
    const server = await startPlainRedis(['--busy-reply-threshold', '100']);
    const port = String(server.port);
    const env = testEnv({ REDIS_URL: `redis://127.0.0.1:${port}`, JTM_HEARTBEAT_INTERVAL: '2s' });
    const worker = startJtm(['worker', '-p', 'qb', '--slots', '1'], env);
    const ctx = await openTestContext(env);
    try {
      await waitWorkers(env, 'qb');
      const [id] = await ctx.redis.zrange(ctx.keys.workers, 0, -1);
      const delays: number[] = [];
      // Each episode starts 8⅔ s after the one before (4 beats and a third): its end falls a third of an interval
      // later in the worker's beat cycle, so a worker that waits for its next regular beat shows a delay of 1.3 s or
      // more in one of the three, whatever its phase.
      const first = Date.now();
      for (let n = 0; n < 3; n++) {
        await new Promise(r => setTimeout(r, first + n * 8667 - Date.now()));
        // 3.3 s of BUSY (at least one beat refused), waited for here: the test's own commands would be refused. The
        // script gives its start and end on Redis's clock (ms): the delay is read from the worker's own stamp of its
        // first beat after it (last_beat: when that beat was sent), not from when this process woke up after
        // redis-cli — a quick beat that landed before this process read last_beat made it wait for the next one, a
        // whole interval (1976 ms, in a loaded CI run).
        const script =
          "local s = redis.call('TIME') local b = s[1] * 1e6 + s[2] local t = b + 3.3e6 repeat s = redis.call('TIME') until s[1] * 1e6 + s[2] >= t return {tostring(math.floor(b / 1000)), tostring(math.floor((s[1] * 1e6 + s[2]) / 1000))}";
        const [began, ended] = redisCli(['-p', port, 'EVAL', script, '0']).trim().split('\n').map(Number);
        let beat = 0;
        await waitFor(
          async () => (beat = Number(await ctx.redis.hget(ctx.keys.worker(id!), 'last_beat'))) > began!,
          'a beat after the script',
          5000,
          10,
        );
        delays.push(beat - ended!);
      }
      expect(Math.max(...delays), `${delays.join(', ')} ms; ${worker.output().slice(-2000)}`).toBeLessThan(
        800,
      );
    } finally {
      await closeContext(ctx);
      await worker.stop();
      await server.stop();
    }
  }, 120_000);
});

/** Runs 4 to 5 s of Redis's time on a connection of its own: every other client is answered BUSY meanwhile. */
function busyScript(port: string): void {
  const script =
    "local t = tonumber(redis.call('TIME')[1]) + 5 while tonumber(redis.call('TIME')[1]) < t do end return 1";
  spawn('redis-cli', ['-p', port, 'EVAL', script, '0'], { stdio: 'ignore' });
}

/** Waits (spinning, bounded) until Redis refuses a write with MISCONF. */
function waitForMisconf(port: string): void {
  for (let i = 0; i < 200; i++) {
    if (/MISCONF/.test(redisCli(['-p', port, 'SET', 'jtm-probe', 'x']))) return;
    spawnSleep(50);
  }
  throw new Error('Redis never refused a write with MISCONF');
}

function spawnSleep(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
