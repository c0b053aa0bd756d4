// Redis paused (issue 13, item 3). Past the job lock, BullMQ's stalled check puts the active job back and the
// same worker fetches it again: the worker must attach that delivery to the run it still has, not start a
// second copy, and record the result once. Past the lease, the worker must stop its run before the lease can
// lapse on the Redis side (self-fencing), and give the task back without spending a retry.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type AddressInfo, connect, createServer, type Socket } from 'node:net';

import { describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { jobIdOf } from '../../src/tasks/job-data.js';
import { openPoolQueue } from '../../src/tasks/pool-queue.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { UNSTARTED_GIVEBACK_LIMIT } from '../../src/worker/lease-losses.js';
import { runJtm, taskIds, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { type LocalRedis, usePrivateRedis } from '../helpers/local-redis.js';
import { context, start } from '../helpers/tracked.js';

const startRedis = usePrivateRedis();
/** Starts lines (`S`) of a task's marker file: one per execution that began. */
function starts(file: string): string[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(l => l.startsWith('S '));
}

async function setUp(extra: Record<string, string>): Promise<{
  env: Record<string, string>;
  ctx: JtmContext;
  redis: LocalRedis;
  marker: string;
  worker: BackgroundProcess;
}> {
  const redis = await startRedis({});
  const env = testEnv({ REDIS_URL: redis.url, ...extra });
  const ctx = await context(env);
  const marker = join(env['JTM_LOG_DIR']!, 'marker');
  // Two slots: the worker has room to fetch the handed-back job while the first delivery still runs.
  const worker = start(['worker', '-p', 'rp', '--slots', '2'], env);
  await waitWorkers(env, 'rp');
  return { env, ctx, redis, marker, worker };
}

describe('Redis paused', () => {
  it('a job handed back to the same worker while its task runs (the stalled check after a lock lapse) attaches to the run', async () => {
    const { env, ctx, marker, worker } = await setUp({});
    const r = await runJtm(
      ['submit', '-cmd', `echo "S $JTM_TASK_TOKEN" >> ${marker}; sleep 4; echo E >> ${marker}`, '-p', 'rp'],
      env,
    );
    const [id] = taskIds(r.stdout);
    await waitFor(() => existsSync(marker) && starts(marker).length === 1, 'first start line');
    // What BullMQ's stalled check does once a job's lock has lapsed (Redis paused past JTM_LOCK_DURATION):
    // the active job goes back to wait, lock removed; the only worker of the pool fetches it again.
    const q = openPoolQueue(ctx, 'rp');
    await (await q.getJob(jobIdOf(id!)))!.moveToWait('0');
    await waitFor(async () => (await ctx.tasks.status(id!)) === TaskStatus.success, 'task success', 30_000);
    // One execution only (before the fix: a second, untracked copy), recorded once, with its token; the job
    // completed under the newest lock.
    expect(starts(marker)).toHaveLength(1);
    expect(worker.output()).toMatch(/job delivered again while its task runs here/);
    const rec = await ctx.tasks.get(id!);
    expect(rec).toMatchObject({ attempts: 1, exit_code: 0 });
    expect(starts(marker)[0]).toBe(`S ${rec!.run_token}`);
    const events = await ctx.tasks.events(id!);
    expect(events.filter(e => e.to === TaskStatus.running)).toHaveLength(1);
    await waitFor(async () => (await q.getJobState(jobIdOf(id!))) === 'completed', 'job completed');
    await q.close();
  }, 120_000);

  it('past the lease: the worker stops its run before the lease lapses, and gives the task back without a retry', async () => {
    // Lease 1.5 s, lock 30 s: only self-fencing can stop the run in a 4 s pause.
    const { env, ctx, redis, marker, worker } = await setUp({ JTM_TASK_RETRIES: '0' });
    const r = await runJtm(
      ['submit', '-cmd', `echo "S $JTM_TASK_TOKEN" >> ${marker}; sleep 6; echo E >> ${marker}`, '-p', 'rp'],
      env,
    );
    const [id] = taskIds(r.stdout);
    await waitFor(() => starts(marker).length === 1, 'first start line');
    const pid = await waitFor(async () => (await ctx.tasks.get(id!))?.pid, 'pid recorded');
    const pausedAt = Date.now();
    process.kill(redis.pid, 'SIGSTOP');
    // The run is killed while Redis is still paused (the worker cannot have heard from Redis), before the
    // lease (1.5 s from the last beat, which was before the pause) can lapse.
    const gone = (): boolean => {
      try {
        process.kill(pid, 0);
        return false;
      } catch {
        return true;
      }
    };
    await waitFor(gone, 'the run stopped by self-fencing', 3500, 20);
    const stoppedAfter = Date.now() - pausedAt;
    expect(stoppedAfter).toBeLessThan(1500);
    await new Promise(res => setTimeout(res, Math.max(0, 4000 - stoppedAfter)));
    const resumedAt = Date.now();
    process.kill(redis.pid, 'SIGCONT');
    // Re-queued without spending a retry (retries 0: a loss would end it lostconnection), then run again.
    await waitFor(
      async () => {
        const rec = await ctx.tasks.get(id!);
        if (rec?.status === TaskStatus.success) return true;
        throw new Error(`task ${rec?.status}: ${rec?.reason ?? ''}; worker: ${worker.output().slice(-3000)}`);
      },
      'task success',
      60_000,
    );
    const rec = await ctx.tasks.get(id!);
    expect(rec).toMatchObject({ attempts: 2 });
    expect(rec!.losses ?? 0).toBe(0);
    expect(starts(marker)).toHaveLength(2);
    const events = await ctx.tasks.events(id!);
    expect(events.map(e => e.reason).join('\n')).toMatch(
      /worker lost its lease on Redis: run stopped before a takeover \(Redis did not answer for \d+\.\d s; not counted against the task\)/,
    );
    // The give-back is stamped when the run stopped, not when Redis answered again (adversary 21 F7: 5.4 s late).
    const givenBack = events.find(e => e.from === TaskStatus.running && e.to === TaskStatus.pending);
    expect(givenBack!.t).toBeLessThan(resumedAt);
  }, 120_000);

  it('a Redis that answers, only slowly (300 ms each way), is not a silent one: the give-backs are counted and the task ends (review: it looped for ever)', async () => {
    const redis = await startRedis({});
    // A proxy that holds every chunk 300 ms each way: each beat is answered, late for a 1.5 s lease.
    const proxy = createServer(client => {
      const server = connect(redis.port, '127.0.0.1');
      const delayed = (from: Socket, to: Socket) =>
        from.on('data', chunk => setTimeout(() => to.writable && to.write(chunk), 300));
      delayed(client, server);
      delayed(server, client);
      const close = () => {
        client.destroy();
        server.destroy();
      };
      client.on('error', close).on('close', close);
      server.on('error', close).on('close', close);
    });
    await new Promise<void>(r => proxy.listen(0, '127.0.0.1', () => r()));
    try {
      const port = (proxy.address() as AddressInfo).port;
      const env = testEnv({ REDIS_URL: `redis://127.0.0.1:${port}`, JTM_TASK_RETRIES: '0' });
      const direct = testEnv({ REDIS_URL: redis.url, JTM_PREFIX: env['JTM_PREFIX']! });
      const ctx = await context(direct);
      const r = await runJtm(['submit', '-cmd', 'sleep 20', '-p', 'slow'], direct);
      const [id] = taskIds(r.stdout);
      // Most of this worker's claims are answered past its lease's start deadline: given back before the command
      // started, which is counted apart and bounded higher (UNSTARTED_GIVEBACK_LIMIT, ≈ 4 s a give-back here).
      // The task starts near that bound, before the worker can claim it, so that the test need not wait it out.
      await ctx.redis.hset(ctx.keys.task(id!), 'unstarted_givebacks', UNSTARTED_GIVEBACK_LIMIT - 2);
      start(['worker', '-p', 'slow', '--slots', '1'], env);
      await waitWorkers(direct, 'slow', 1, 30_000);
      const rec = await waitFor(
        async () => {
          const t = await ctx.tasks.get(id!);
          return t && t.status < 0 ? t : undefined;
        },
        'the task to end',
        60_000,
      );
      expect([rec.status_name, rec.redis_silences], rec.reason).toEqual(['lostconnection', undefined]);
      // Ended by whichever bound came first: runs that started (lease_losses) or runs that did not.
      expect(rec.reason).toMatch(
        /lost its lease on Redis \d+ times|lost its lease on Redis between a claim and its command's start \d+ times/,
      );
    } finally {
      proxy.close();
    }
  }, 120_000);

  it('Redis silent three times in a task’s life: given back each time, never ended for it (adversary 16 Q2)', async () => {
    // JTM_TASK_RETRIES 0: one counted lease loss is allowed, the second ended the task lostconnection, "its
    // heartbeats were late each time", though the worker kept asking and Redis did not answer.
    const { env, ctx, redis, marker } = await setUp({ JTM_TASK_RETRIES: '0' });
    const r = await runJtm(
      ['submit', '-cmd', `echo "S $JTM_TASK_TOKEN" >> ${marker}; sleep 3; echo E >> ${marker}`, '-p', 'rp'],
      env,
    );
    const [id] = taskIds(r.stdout);
    for (let n = 1; n <= 3; n++) {
      await waitFor(() => existsSync(marker) && starts(marker).length === n, `start ${n}`, 30_000);
      process.kill(redis.pid, 'SIGSTOP');
      await new Promise(res => setTimeout(res, 2500));
      process.kill(redis.pid, 'SIGCONT');
    }
    const rec = await waitFor(
      async () => {
        const t = await ctx.tasks.get(id!);
        return t && (t.status < 0 || t.status === TaskStatus.success) ? t : undefined;
      },
      'the task to end',
      60_000,
    );
    expect([rec.status_name, rec.lease_losses ?? 0], rec.reason).toEqual(['success', 0]);
    expect(starts(marker)).toHaveLength(4);
  }, 120_000);
});
