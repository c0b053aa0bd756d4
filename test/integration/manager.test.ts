import { existsSync, writeFileSync } from 'node:fs';

import { afterAll, describe, expect, it } from 'vitest';

import { emptyReconcileCounts, reconcileBatch } from '../../src/manager/reconcile.js';
import { newSweepState, sweep } from '../../src/manager/sweep.js';
import { RECONNECT_MAX_DELAY_MS } from '../../src/redis/connection.js';
import { jobIdOf } from '../../src/tasks/job-data.js';
import { openPoolQueue } from '../../src/tasks/pool-queue.js';
import { runJtm, taskIds, statusOf, waitManager, waitStatus, waitWorkers } from '../helpers/cli.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { context, start, stopTracked } from '../helpers/tracked.js';

afterAll(stopTracked);

async function submit(env: Record<string, string>, cmd: string, pool: string): Promise<number> {
  const r = await runJtm(['submit', '-cmd', cmd, '-p', pool], env);
  expect(r.code).toBe(0);
  return taskIds(r.stdout)[0]!;
}

async function workerUp(env: Record<string, string>, pool: string, slots = 1): Promise<void> {
  await waitWorkers(env, pool, slots);
}

describe('dead workers', () => {
  it('SIGKILL of a worker mid-task: the task is re-queued and a second worker finishes it', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const marker = `${env['JTM_LOG_DIR']}/ran`;
    const w1 = start(['worker', '-p', 'dw'], env);
    await workerUp(env, 'dw');
    start(['manager'], env);
    // First run sleeps long; the second (after recovery) finishes at once.
    const id = await submit(
      env,
      `if [ -e ${marker} ]; then echo again; else touch ${marker}; sleep 300; fi`,
      'dw',
    );
    await waitStatus(env, id, 'running');
    // The marker, not the status: a kill before the first run's `touch` would make the second run the long one.
    await waitFor(() => existsSync(marker), 'the first run to begin');
    const first = (await ctx.tasks.get(id))!.worker_id!;
    await w1.stop('SIGKILL');
    await waitStatus(env, id, 'pending');
    // The dead worker leaves the index (right after its tasks are recovered); its job went back to the queue.
    await waitFor(async () => (await ctx.redis.zscore(ctx.keys.workers, first)) === null, 'worker unindexed');
    start(['worker', '-p', 'dw'], env);
    await waitStatus(env, id, 'success');
    const rec = await ctx.tasks.get(id);
    expect(rec).toMatchObject({ attempts: 2, status: 4 });
    const events = await ctx.tasks.events(id);
    // (A worker may claim the task before submit marks it pending: the history then skips 2 at first.)
    expect(events.map(e => e.to).slice(-4)).toEqual([3, 2, 3, 4]);
    expect(events.at(-3)?.reason).toMatch(/re-queued: worker .* was lost \(1 of 1 retries used\)/);
    const q = openPoolQueue(ctx, 'dw');
    expect(await q.getJobState(jobIdOf(id))).toBe('completed');
    await q.close();
  });

  it('with JTM_TASK_RETRIES=0 the task of a killed worker ends lostconnection, with a reason', async () => {
    const env = testEnv({ JTM_TASK_RETRIES: '0' });
    const ctx = await context(env);
    const w = start(['worker', '-p', 'lc'], env);
    await workerUp(env, 'lc');
    const m = start(['manager'], env);
    const id = await submit(env, 'sleep 300', 'lc');
    await waitStatus(env, id, 'running');
    const workerId = (await ctx.tasks.get(id))!.worker_id!;
    await w.stop('SIGKILL');
    await waitStatus(env, id, 'lostconnection');
    expect((await ctx.tasks.get(id))?.reason).toBe(`worker ${workerId} was lost and no retries are left`);
    await waitFor(
      async () => (await ctx.redis.zscore(ctx.keys.workers, workerId)) === null,
      'worker unindexed',
    );
    const q = openPoolQueue(ctx, 'lc');
    expect(await q.getJobState(jobIdOf(id))).toBe('failed');
    await q.close();
    await waitFor(() => /"dead_workers":1/.test(m.output()), 'sweep log with counts');
    expect(m.output()).toMatch(/"lost":1/);
  });
});

describe('manager restarts and replicas', () => {
  it('a manager killed mid-sweep and restarted changes no task outcome', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const w = start(['worker', '-p', 'rs', '--slots', '2'], env);
    await workerUp(env, 'rs', 2);
    const done = await submit(env, 'echo ok', 'rs');
    const failed = await submit(env, 'exit 3', 'rs');
    await waitStatus(env, done, 'success');
    await waitStatus(env, failed, 'failed');
    // Runs until the test releases it, after the manager kills: a fixed length (it was 4 s) let it end
    // before a starved test saw it running.
    const release = `${env['JTM_LOG_DIR']}/release`;
    const running = await submit(env, `while [ ! -e ${release} ]; do sleep 0.1; done; echo late`, 'rs');
    const waiting = await submit(env, 'true', 'nobody');
    await waitStatus(env, running, 'running');
    // Kill managers at several points of their work, then let one run for a while.
    for (let i = 0; i < 3; i++) {
      const m = start(['manager'], env);
      await waitFor(async () => (await ctx.redis.hget(ctx.keys.managerStats, 'sweeps')) !== null, 'a sweep');
      await m.stop('SIGKILL');
    }
    const m = start(['manager'], env);
    writeFileSync(release, '');
    await waitStatus(env, running, 'success');
    const sweeps = Number(await ctx.redis.hget(ctx.keys.managerStats, 'sweeps'));
    await waitFor(
      async () => Number(await ctx.redis.hget(ctx.keys.managerStats, 'sweeps')) > sweeps + 2,
      'more sweeps',
    );
    expect(await statusOf(env, done)).toBe('success');
    expect(await statusOf(env, failed)).toBe('failed');
    expect(await statusOf(env, waiting)).toBe('pending');
    expect((await ctx.tasks.get(running))?.attempts).toBe(1);
    await m.stop();
    await w.stop();
  });

  it('two managers: one sweep per tick', async () => {
    // Short ticks, so that many pass quickly; the test waits for sweeps, not for a fixed time.
    const tickMs = 300;
    const env = testEnv({ JTM_SWEEP_INTERVAL: `${tickMs}ms` });
    const ctx = await context(env);
    const a = start(['manager'], env);
    const b = start(['manager'], env);
    await waitFor(() => /manager started/.test(a.output()) && /manager started/.test(b.output()), 'both up');
    const sweeps = async () => Number((await ctx.redis.hget(ctx.keys.managerStats, 'sweeps')) ?? 0);
    const t0 = Date.now();
    const s0 = await sweeps();
    const s1 = await waitFor(async () => ((await sweeps()) >= s0 + 8 ? sweeps() : false), '8 sweeps');
    const ticks = (Date.now() - t0) / tickMs;
    // One sweep per tick: never two (the bound allows a tick at each edge of the window). Two managers
    // sweeping each tick would reach 8 sweeps in 4 ticks.
    expect(s1 - s0).toBeGreaterThanOrEqual(8);
    expect(s1 - s0).toBeLessThanOrEqual(Math.ceil(ticks) + 1);
    await Promise.all([a.stop(), b.stop()]);
  });
});

describe('check-manager', () => {
  it('exits 1 without a manager and 0 with one; --json gives host, pid and last sweep', async () => {
    const env = testEnv();
    const none = await runJtm(['check-manager', '-cl', 'cori'], env);
    expect([none.code, none.stdout]).toEqual([1, '']);
    const m = start(['manager'], env);
    await waitManager(env);
    expect((await runJtm(['check-manager'], env)).code).toBe(0);
    const j = await runJtm(['check-manager', '--json'], env);
    const info = JSON.parse(j.stdout) as { host: string; pid: number; last_sweep: number };
    expect(info.pid).toBe(m.child.pid);
    expect(info.host).toEqual(expect.any(String));
    expect(info.last_sweep).toBeGreaterThan(0);
    expect(await m.stop()).toBe(0);
    await waitManager(env, false);
    expect((await runJtm(['check-manager'], env)).code).toBe(1);
  });
});

describe('remove-pool and pools', () => {
  it('ends queued tasks terminated, kills running ones with --force, removes the queue; unknown → failed', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const w = start(['worker', '-p', 'rp'], env);
    await workerUp(env, 'rp');
    const running = await submit(env, 'sleep 300', 'rp');
    await waitStatus(env, running, 'running');
    const queued = [await submit(env, 'true', 'rp'), await submit(env, 'true', 'rp')];
    const list = JSON.parse((await runJtm(['pools', '--json'], env)).stdout) as {
      name: string;
      live_workers: number;
      waiting: number;
      active: number;
    }[];
    expect(list.find(p => p.name === 'rp')).toMatchObject({ live_workers: 1, waiting: 2, active: 1 });
    expect((await runJtm(['pools'], env)).stdout).toMatch(/^POOL.*\nrp +manual +1 +1 +2 +1 /);

    const r = await runJtm(['remove-pool', '-p', 'rp', '--force', '-cl', 'local'], env);
    expect([r.stdout, r.code]).toEqual(['removed\n', 0]);
    for (const id of queued) {
      expect(await statusOf(env, id)).toBe('terminated');
      expect((await ctx.tasks.get(id))?.reason).toBe('pool rp removed');
    }
    expect(await statusOf(env, running)).toBe('terminated');
    expect(await w.exited).toBe(0);
    expect(await ctx.redis.sismember(ctx.keys.pools, 'rp')).toBe(0);
    expect(await ctx.redis.keys(`${ctx.keys.queuePrefix}:rp:*`)).toEqual([]);
    const again = await runJtm(['remove-pool', '-p', 'rp'], env);
    expect([again.stdout, again.code]).toEqual(['failed\n', 1]);
  });

  it('without --force a running task finishes; a task given back after removal ends terminated', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const w = start(['worker', '-p', 'soft', '--shutdown-grace', '30s'], env);
    await workerUp(env, 'soft');
    // Runs until released after remove-pool: a fixed 2 s could end before a starved test saw it running.
    const release = `${env['JTM_LOG_DIR']}/release`;
    const running = await submit(env, `while [ ! -e ${release} ]; do sleep 0.1; done; echo fine`, 'soft');
    await waitStatus(env, running, 'running');
    const r = await runJtm(['remove-pool', '-p', 'soft'], env);
    expect(r.stdout).toBe('removed\n');
    writeFileSync(release, '');
    await waitStatus(env, running, 'success');
    expect(await w.exited).toBe(0);
    // A pending task whose pool is gone (as a worker that gives a task back leaves it) ends at reconciliation.
    const orphan = await submit(env, 'true', 'gone');
    await ctx.redis.multi().srem(ctx.keys.pools, 'gone').del(ctx.keys.pool('gone')).exec();
    const q = openPoolQueue(ctx, 'gone');
    await q.remove(jobIdOf(orphan));
    await q.close();
    const state = newSweepState(ctx);
    await sweep(ctx, state);
    expect(await ctx.tasks.get(orphan)).toMatchObject({
      status_name: 'terminated',
      reason: 'its pool gone was removed',
    });
    await state.jobs.close();
  });
});

describe('reconciliation and expiry (sweep called directly)', () => {
  it('re-adds a lost job, fails a stuck submit, removes an orphan job, expires an idle pool', async () => {
    const env = testEnv({ JTM_POOL_IDLE: '1s' });
    const ctx = await context(env);
    const lost = await submit(env, 'echo back', 'rc');
    const q = openPoolQueue(ctx, 'rc');
    await q.remove(jobIdOf(lost));
    await q.add('task', { id: 999_999 }, { jobId: jobIdOf(999_999) });
    // A submit that died after writing its record, long ago.
    const stuck = await ctx.tasks.create(
      { command: 'true', pool: 'rc', max_retries: 1 },
      Date.now() - 120_000,
    );
    const idle = await submit(env, 'true', 'idle');
    const idleQueue = openPoolQueue(ctx, 'idle');
    await idleQueue.drain(true);
    await ctx.tasks.transition(idle, [2], -4, 'test');
    const state = newSweepState(ctx);
    await sweep(ctx, state, Date.now() + 5000);
    expect(await q.getJobState(jobIdOf(lost))).toBe('waiting');
    expect(await q.getJobState(jobIdOf(999_999))).toBe('unknown');
    expect(await ctx.tasks.get(stuck)).toMatchObject({
      status_name: 'failed',
      reason: 'submit did not complete',
    });
    expect(await ctx.redis.sismember(ctx.keys.pools, 'idle')).toBe(0);
    expect(await ctx.redis.sismember(ctx.keys.pools, 'rc')).toBe(1);
    // A restarted manager (new state) finds nothing left to change.
    const again = await sweep(ctx, newSweepState(ctx), Date.now() + 5000);
    expect(again.reconciled).toMatchObject({ readded: 0, submitFailed: 0, orphans: 0 });
    start(['worker', '-p', 'rc'], env);
    await waitStatus(env, lost, 'success');
    await Promise.all([q.close(), idleQueue.close(), state.jobs.close()]);
  });
});

describe('reconciliation and a dead worker still in the index', () => {
  it("leaves its running task to the sweep's burial (which may wait for squeue), then recovers it once it left", async () => {
    // Review of d65d608: a sweep that waits for squeue to say whether the worker's allocation is suspended keeps
    // the worker in the index; reconciliation recovered its task meanwhile, as a loss.
    const env = testEnv();
    const ctx = await context(env);
    const id = await submit(env, 'true', 'held');
    await ctx.redis.hset(ctx.keys.task(id), 'status', '3', 'worker_id', 'w-held', 'run_token', 'r1');
    await ctx.redis.zadd(ctx.keys.workers, Date.now(), 'w-held');
    const state = newSweepState(ctx);
    const counts = emptyReconcileCounts();
    await reconcileBatch(ctx, state.jobs, 0, counts, Date.now());
    expect(await ctx.tasks.status(id)).toBe(3);
    await ctx.redis.zrem(ctx.keys.workers, 'w-held');
    await reconcileBatch(ctx, state.jobs, 0, counts, Date.now());
    expect(await ctx.tasks.get(id)).toMatchObject({ status_name: 'pending', losses: 1 });
    await state.jobs.close();
  });
});

describe('a sweep after a gap (Redis refused every command, or no manager ran)', () => {
  it('looks for dead workers once every live worker could beat again, whichever manager sweeps', async () => {
    // The gate of s16: a BUSY episode lapsed a live worker's alive key; the first sweep as Redis answered again
    // declared it dead ~250 ms before its next beat, and its task was charged a loss. And a manager that
    // reconnects before a worker (a rotated password restored: each reconnects on its own schedule, up to 5 s
    // apart) buried the worker at its second sweep.
    const env = testEnv();
    const ctx = await context(env);
    const id = await submit(env, 'true', 'gap');
    await ctx.redis.hset(ctx.keys.task(id), 'status', '3', 'worker_id', 'w-gap', 'run_token', 'r1');
    const now = Date.now();
    await ctx.redis.zadd(ctx.keys.workers, now - 60_000, 'w-gap');
    // The site's last sweep a minute ago.
    await ctx.redis.hset(ctx.keys.managerStats, 'last_sweep_at', now - 60_000);
    const state = newSweepState(ctx);
    const other = newSweepState(ctx);
    const held = ctx.config.heartbeatIntervalMs * ctx.config.missedBeats + RECONNECT_MAX_DELAY_MS;
    expect((await sweep(ctx, state, now)).dead_workers).toEqual([]);
    expect(await ctx.tasks.status(id)).toBe(3);
    // The next sweeps, one a second, this manager's and another's, within the hold: the worker may still be
    // reconnecting.
    let t = now + 1000;
    for (let k = 0; t < now + held; t += 1000, k++)
      expect((await sweep(ctx, k % 2 ? other : state, t)).dead_workers).toEqual([]);
    expect(await ctx.tasks.status(id)).toBe(3);
    // Past it: still no beat, so it is dead.
    expect((await sweep(ctx, state, t)).dead_workers).toEqual(['w-gap']);
    await other.jobs.close();
    await state.jobs.close();
  });
});

describe('no manager at all', () => {
  it('submit → worker → status works and nothing needs a sweep', async () => {
    const env = testEnv();
    const ctx = await context(env);
    start(['worker', '-p', 'nm', '--slots', '2'], env);
    await workerUp(env, 'nm', 2);
    const ids = [await submit(env, 'echo a', 'nm'), await submit(env, 'exit 2', 'nm')];
    await waitStatus(env, ids[0]!, 'success');
    await waitStatus(env, ids[1]!, 'failed');
    expect(await ctx.redis.exists(ctx.keys.managerAlive)).toBe(0);
    expect((await runJtm(['check-manager'], env)).code).toBe(1);
  });
});

// "manager started" (and the dashboard's "dashboard listening") was logged before the signal handlers were
// installed: a SIGTERM right after it (a supervisor, a test) killed the process by the default action — 16
// and 19 times in 20 here — with nothing closed (seen in CI as the help example `jtm manager` ending by a signal).
describe('a stop right after the start', () => {
  it.each([
    [['manager'], 'manager started'],
    [['dashboard', '--port', '0'], 'dashboard listening'],
  ])(
    'jtm %s, SIGTERM as soon as it logs "%s": a graceful stop, exit 0',
    async (args, line) => {
      const { spawn } = await import('node:child_process');
      const { BIN } = await import('../helpers/cli.js');
      const env = testEnv();
      for (let i = 0; i < 5; i++) {
        const c = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
        let sent = false;
        c.stderr.on('data', d => {
          if (!sent && String(d).includes(line)) {
            sent = true;
            c.kill('SIGTERM');
          }
        });
        const [code, signal] = await new Promise<[number | null, string | null]>(r =>
          c.on('close', (co, si) => r([co, si])),
        );
        expect([i, code, signal]).toEqual([i, 0, null]);
      }
    },
    60_000,
  );
});

describe('Redis that lost data', () => {
  // Adversary 7 H1: after Redis restarted from an older snapshot, the next submit got the id of a lost call,
  // and Cromwell's isalive/kill of that call acted on another workflow's task.
  it('a task id counter that went back is raised past its highest value, and the manager says Redis lost data', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const m = start(['manager'], env);
    await waitManager(env);
    const ids = [await submit(env, 'true', 'idc'), await submit(env, 'true', 'idc')];
    const sweeps = async (): Promise<number> => Number(await ctx.redis.hget(ctx.keys.managerStats, 'sweeps'));
    const seen = await sweeps();
    await waitFor(async () => (await sweeps()) >= seen + 2 || undefined, 'the manager to see the counter');
    // The rollback: the counter as an older snapshot held it.
    await ctx.redis.set(ctx.keys.nextTaskId, '1');
    await waitFor(() => /Redis lost data/.test(m.output()) || undefined, 'the manager to notice', 30_000);
    const next = await submit(env, 'true', 'idc');
    expect(next).toBeGreaterThan(Math.max(...ids) + 999_999);
    if (((await ctx.redis.call('CONFIG', 'GET', 'appendonly')) as string[])[1] === 'no')
      expect(m.output()).toMatch(/Redis runs without an append-only file/);
  });
});
