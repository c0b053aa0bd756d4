// A worker's command that reached Redis and whose answer a dropped connection lost; ioredis sends it again on the
// new connection.
//
// A fetch (adversary 30 F3): Redis made the job active under the worker's
// lock, ioredis sent the fetch again on the new connection, and the first job was known to no one — its task stayed
// pending, slots free, until its lock lapsed and BullMQ's stalled check gave it back (39 s in the adversary's run;
// up to JTM_LOCK_DURATION + JTM_STALLED_INTERVAL, 45 s by default). The worker now puts it back once reconnected.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runJtm, startJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { startCutProxy } from '../helpers/cut-proxy.js';
import { closeContext, openTestContext, waitFinalRecord } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { TRANSITION } from '../../src/redis/scripts.js';
import type { JtmContext } from '../../src/context.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { startPlainRedis } from './servers.js';

/**
 * A private Redis, a cut proxy in front of it (`matches`: the command whose answer is lost), a worker of `pool`
 * (one slot) through the proxy, and a context that talks to Redis directly; `run` gets them, everything is stopped.
 */
async function withCutWorker(
  pool: string,
  matches: (chunk: Buffer) => boolean,
  run: (t: {
    proxy: Awaited<ReturnType<typeof startCutProxy>>;
    direct: Record<string, string>;
    ctx: JtmContext;
    workerOutput: () => string;
  }) => Promise<void>,
): Promise<void> {
  const redis = await startPlainRedis();
  const proxy = await startCutProxy(redis.port, matches);
  const direct = testEnv({ REDIS_URL: `redis://127.0.0.1:${redis.port}` });
  const worker = startJtm(['worker', '-p', pool, '--slots', '1'], { ...direct, REDIS_URL: proxy.url });
  const ctx = await openTestContext(direct);
  try {
    await waitWorkers(direct, pool);
    await run({ proxy, direct, ctx, workerOutput: () => worker.output().slice(-3000) });
  } finally {
    await closeContext(ctx);
    await worker.stop();
    await proxy.close();
    await redis.stop();
  }
}

describe('a fetch whose answer was lost', () => {
  it('is put back in the queue once the worker has reconnected: the task runs in seconds, once, not after the lock and the stalled check', async () => {
    // The worker's fetch: the first script run that names the queue's marker key once armed. Defaults for the
    // lock (30 s) and the stalled check (15 s): what the task waited for before.
    await withCutWorker(
      'lf',
      chunk => chunk.includes('evalsha') && chunk.includes(':marker'),
      async ({ proxy, direct, ctx, workerOutput }) => {
        // The worker waits in its blocking fetch; the submit wakes it and its fetch is the next script it runs.
        proxy.arm();
        const submitted = Date.now();
        const [id] = taskIds((await runJtm(['submit', '-p', 'lf', '-cmd', 'true'], direct)).stdout);
        await waitFor(() => proxy.cuts() > 0 || undefined, 'the fetch to be cut', 10_000);
        const record = await waitFinalRecord(ctx, id!, 60_000);
        const waited = Date.now() - submitted;
        expect(record.status, workerOutput()).toBe(TaskStatus.success);
        expect(record.attempts).toBe(1);
        // Reconnect (≈ 0.1-1 s) + the settle delay (2 s) + the run; 30 s or more before.
        expect(waited, workerOutput()).toBeLessThan(15_000);
        expect(workerOutput()).toMatch(/a job fetched as this worker's connection dropped .* was put back/);
      },
    );
  }, 90_000);
});

// The end of a run (adversary 31 F1): the resend found the task final, the worker took its own write for another
// execution's, logged "result dropped" and wrote no rc — a timed-out Cromwell call waited for its exit-code
// timeout instead of failing at once (3 of 24 under a CLIENT KILL storm).
describe("a run's end whose answer was lost", () => {
  it("is taken for what it is, this execution's own: the rc of a timed-out task is written", async () => {
    const sha = createHash('sha1').update(TRANSITION).digest('hex');
    await withCutWorker(
      'le',
      chunk => chunk.includes(sha),
      async ({ proxy, direct, ctx, workerOutput }) => {
        const rc = join(tempDir('jtm-lost-end-'), 'rc');
        proxy.arm();
        const out = await runJtm(
          ['submit', '-p', 'le', '-cmd', 'sleep 30', '--timeout', '1s', '--rc-file', rc],
          direct,
        );
        const [id] = taskIds(out.stdout);
        await waitFor(() => proxy.cuts() > 0 || undefined, 'the end to be cut', 20_000);
        expect((await waitFinalRecord(ctx, id!, 30_000)).status).toBe(TaskStatus.timeout);
        await waitFor(() => existsSync(rc) || undefined, 'the rc file', 10_000).catch(() => undefined);
        expect(existsSync(rc) ? readFileSync(rc, 'utf8').trim() : 'missing', workerOutput()).toBe('124');
        expect(workerOutput()).not.toMatch(/result dropped/);
      },
    );
  }, 90_000);
});
