// A Redis that answers every write with an error for a few seconds — BUSY (another client's slow script), MISCONF
// (its snapshot failing) — is out for every worker, as a silent one is (redis-pause.test.ts). A worker whose beats
// it refuses stops its runs before its lease can lapse (right), but it did not give them back: the read before the
// give-back was refused too and the run's end was dropped, so the job kept its lock until it lapsed and its
// redelivery took the task over as "worker … was lost", a retry spent on a live worker (adversary 24 F1); under
// MISCONF the give-back was counted as a lease loss, the worker's lateness (F6). Now: given back once Redis takes
// writes again, counted as one of Redis's silences, no retry spent.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runJtm, startJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { redisCli, startPlainRedis } from './servers.js';

/** Starts lines (`S`) of a task's marker file: one per execution that began. */
function starts(file: string): number {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(l => l === 'S').length
    : 0;
}

/**
 * A worker with one long task, an episode of refusals (`refuse`, then `accept` 4 s later: past the worker's 1.5 s
 * lease), and the task's end: run again once, nothing charged.
 */
async function episode(
  refuse: (port: string, dir: string) => void,
  accept: (port: string, dir: string) => void,
) {
  const dir = tempDir('jtm-refusing-');
  // BUSY replies from 100 ms into a script (5 s by default).
  const server = await startPlainRedis(['--dir', dir, '--busy-reply-threshold', '100']);
  const port = String(server.port);
  // No retry to spend: a run charged as a loss ends lostconnection.
  const env = testEnv({ REDIS_URL: `redis://127.0.0.1:${port}`, JTM_TASK_RETRIES: '0' });
  const worker = startJtm(['worker', '-p', 'rw', '--slots', '1'], env);
  const ctx = await openTestContext(env);
  try {
    await waitWorkers(env, 'rw');
    const marker = join(dir, 'marker');
    const [id] = taskIds(
      (await runJtm(['submit', '-p', 'rw', '-cmd', `echo S >> ${marker}; sleep 8; echo E >> ${marker}`], env))
        .stdout,
    );
    await waitFor(() => starts(marker) === 1, 'the task to start');
    await waitFor(async () => (await ctx.tasks.get(id!))?.pid, 'its pid recorded');
    refuse(port, dir);
    await new Promise(r => setTimeout(r, 4000));
    // Stopped before the lease could lapse (the worker cannot have renewed it), not after.
    expect(worker.output()).toMatch(/Redis has not answered for \d+ ms; stopping the running tasks/);
    accept(port, dir);
    const rec = await waitFor(
      async () => {
        const t = await ctx.tasks.get(id!);
        return t && (t.status < 0 || t.status === TaskStatus.success) ? t : undefined;
      },
      'the task to end',
      90_000,
    );
    expect(
      [rec.status_name, rec.attempts, rec.losses ?? 0, rec.lease_losses ?? 0, rec.redis_silences],
      `${rec.reason}; worker: ${worker.output().slice(-3000)}`,
    ).toEqual(['success', 2, 0, 0, 1]);
    expect(starts(marker)).toBe(2);
    const events = await ctx.tasks.events(id!);
    expect(events.map(e => e.reason).join('\n')).toMatch(
      /run stopped before a takeover \(Redis did not answer for \d+\.\d s; not counted against the task\)/,
    );
  } finally {
    await closeContext(ctx);
    await worker.stop();
    await server.stop();
  }
}

describe('a Redis that refuses writes for a while', () => {
  it('BUSY (another client runs a long script): the run is given back once the script ends, no retry spent (adversary 24 F1)', async () => {
    await episode(
      port => {
        // Runs 4.5 s of Redis's time, on a connection of its own: every other client is answered BUSY meanwhile.
        const script =
          "local t = tonumber(redis.call('TIME')[1]) + 5 while tonumber(redis.call('TIME')[1]) < t do end return 1";
        spawn('redis-cli', ['-p', port, 'EVAL', script, '0'], { stdio: 'ignore' });
      },
      () => {},
    );
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
});

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
