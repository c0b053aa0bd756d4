import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { provisionDynamicPools } from '../../src/manager/provision.js';
import { listPools } from '../../src/pools/list-pools.js';
import { jobIdOf } from '../../src/tasks/job-data.js';
import { openPoolQueue } from '../../src/tasks/pool-queue.js';
import { runJtm, taskIds, waitStatus, waitWorkers } from '../helpers/cli.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { context, start, stopTracked } from '../helpers/tracked.js';

/**
 * Every path where JTM itself ends a task writes the rc Cromwell reads (docs/cromwell.md), remove-pool
 * without --force lets running tasks finish (docs/manager.md), and a provisioning failure removes the jobs
 * of the tasks it fails.
 */
afterAll(stopTracked);

async function submit(env: Record<string, string>, args: string[]): Promise<number> {
  const r = await runJtm(['submit', ...args], env);
  expect(r.code, r.stderr).toBe(0);
  return taskIds(r.stdout)[0]!;
}

async function workerUp(env: Record<string, string>, pool: string): Promise<void> {
  await waitWorkers(env, pool);
}

/** A Cromwell call directory whose script runs `body` and then writes rc as Cromwell's script does. */
function cromwellCall(root: string, name: string, body: string): { command: string; rc: string } {
  const exec = join(root, name, 'execution');
  mkdirSync(exec, { recursive: true });
  writeFileSync(join(exec, 'script'), `${body}\necho $? > ${exec}/rc.tmp\nmv ${exec}/rc.tmp ${exec}/rc\n`);
  return { command: `/bin/bash ${exec}/script`, rc: join(exec, 'rc') };
}

describe('remove-pool and the rc file', () => {
  it('--force: the running task it kills and the waiting one both end terminated with rc 75', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const root = tempDir('jtm-rc-');
    const w = start(['worker', '-p', 'rcforce'], env);
    await workerUp(env, 'rcforce');
    const run = cromwellCall(root, 'call-run', 'sleep 300');
    const wait = cromwellCall(root, 'call-wait', 'true');
    const running = await submit(env, ['-cmd', run.command, '-p', 'rcforce']);
    await waitStatus(env, running, 'running');
    const waiting = await submit(env, ['-cmd', wait.command, '-p', 'rcforce']);

    const r = await runJtm(['remove-pool', '-p', 'rcforce', '--force', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ killed: [running], terminated: [waiting] });
    for (const id of [running, waiting]) {
      expect((await ctx.tasks.get(id))?.status_name).toBe('terminated');
    }
    // The worker records the kill and writes rc; remove-pool waited for the record.
    await waitFor(() => existsSync(run.rc), 'rc of the killed task');
    expect(readFileSync(run.rc, 'utf8')).toBe('75\n');
    expect(readFileSync(wait.rc, 'utf8')).toBe('75\n');
    // Both say why, the waiting one too (adversary 11 L6: no kill_cause).
    for (const id of [running, waiting]) expect((await ctx.tasks.get(id))?.kill_cause).toBe('pool-removed');
    expect(await w.exited).toBe(0);
  });

  it('--force with the worker already dead: the task ends terminated at once, with rc 75', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const root = tempDir('jtm-rc-');
    const w = start(['worker', '-p', 'rcdead', '--worker_id', 'wdead'], env);
    await workerUp(env, 'rcdead');
    const run = cromwellCall(root, 'call-run', 'sleep 300');
    const running = await submit(env, ['-cmd', run.command, '-p', 'rcdead']);
    await waitStatus(env, running, 'running');
    await w.stop('SIGKILL');
    await waitFor(
      async () => (await ctx.redis.exists(ctx.keys.workerAlive('wdead'))) === 0,
      'alive key gone',
    );

    const r = await runJtm(['remove-pool', '-p', 'rcdead', '--force', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ killed: [], terminated: [running] });
    expect((await ctx.tasks.get(running))?.status_name).toBe('terminated');
    expect(readFileSync(run.rc, 'utf8')).toBe('75\n');
  });

  it('a user kill (Cromwell abort) still writes no rc', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const root = tempDir('jtm-rc-');
    start(['worker', '-p', 'rcuser'], env);
    await workerUp(env, 'rcuser');
    const run = cromwellCall(root, 'call-run', 'sleep 300');
    const running = await submit(env, ['-cmd', run.command, '-p', 'rcuser']);
    await waitStatus(env, running, 'running');
    expect((await runJtm(['kill', '-tid', String(running)], env)).code).toBe(0);
    expect((await ctx.tasks.get(running))?.status_name).toBe('terminated');
    // Then the pool goes: the task is already final, nothing is written.
    expect((await runJtm(['remove-pool', '-p', 'rcuser', '--force'], env)).code).toBe(0);
    expect(existsSync(run.rc)).toBe(false);
  });

  it('without --force: the running task finishes past the shutdown grace, no new task starts, then the worker exits', async () => {
    const env = testEnv();
    const ctx = await context(env);
    // A grace far shorter than the task: the old behaviour (grace, then kill and give back) shows at once.
    const w = start(['worker', '-p', 'soft2', '--shutdown-grace', '500ms'], env);
    await workerUp(env, 'soft2');
    // Still running when remove-pool (a CLI start on a loaded machine) gets to it, whatever the load: it
    // runs until the test releases it (a fixed 10 s before), well past the 500 ms grace.
    const release = join(tempDir('jtm-release-'), 'release');
    const running = await submit(env, [
      ...['-cmd', `while [ ! -e ${release} ]; do sleep 0.1; done; echo fine`],
      ...['-p', 'soft2'],
    ]);
    await waitStatus(env, running, 'running');
    const waiting = await submit(env, ['-cmd', 'true', '-p', 'soft2']);
    const r = await runJtm(['remove-pool', '-p', 'soft2', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ left_running: [running], terminated: [waiting] });
    // Past the shutdown grace: the old behaviour would have killed it and given it back by now.
    await waitFor(() => /worker stopping/.test(w.output()) || undefined, 'the worker to begin its stop');
    await new Promise(res => setTimeout(res, 1500));
    writeFileSync(release, '');
    await waitStatus(env, running, 'success');
    expect(await ctx.tasks.get(running)).toMatchObject({ attempts: 1, exit_code: 0 });
    expect((await ctx.tasks.get(waiting))?.status_name).toBe('terminated');
    expect(await w.exited).toBe(0);
  });
});

describe('a pool only its workers name', () => {
  it('a worker started before any task: jtm pools lists its pool, remove-pool stops it (it said "failed" and left it running)', async () => {
    const env = testEnv();
    const w = start(['worker', '-p', 'ahead', '--slots', '2'], env);
    await workerUp(env, 'ahead');
    const pools = JSON.parse((await runJtm(['pools', '--json'], env)).stdout) as {
      name: string;
      live_slots: number;
    }[];
    expect(pools).toEqual([expect.objectContaining({ name: 'ahead', live_slots: 2 })]);
    const r = await runJtm(['remove-pool', '-p', 'ahead'], env);
    expect([r.code, r.stdout.trim()]).toEqual([0, 'removed']);
    expect(await w.exited).toBe(0);
  });
});

describe('a worker draining before its end of life', () => {
  it('gives the running task back (JTM does not end it, writes no rc); it runs again and its own rc stands', async () => {
    const env = testEnv({ JTM_TASK_RETRIES: '0' });
    const ctx = await context(env);
    const root = tempDir('jtm-rc-');
    // Slurm's early warning (SIGUSR1) drains a worker: a task its end of life (1 h here) would cut goes back.
    const short = start(['worker', '-p', 'drain', '--lifetime', '1h', '--worker_id', 'wshort'], env);
    await workerUp(env, 'drain');
    // Runs until released, once drained (a fixed 6 s before): still running when SIGUSR1 comes, whatever the
    // load, and the run after the drain ends as soon as it starts.
    const release = join(root, 'release');
    const call = cromwellCall(root, 'call-drain', `while [ ! -e ${release} ]; do sleep 0.1; done`);
    const id = await submit(env, ['-cmd', call.command, '-p', 'drain']);
    await waitStatus(env, id, 'running');
    short.child.kill('SIGUSR1');
    await waitFor(async () => (await ctx.tasks.events(id)).some(e => e.from === 3 && e.to === 2), 'drained');
    expect(existsSync(call.rc)).toBe(false);
    // The drained worker would defer the task again and again; let a fresh one have it.
    expect(await short.stop('SIGTERM')).toBe(0);
    writeFileSync(release, '');
    start(['worker', '-p', 'drain'], env);
    await waitStatus(env, id, 'success', 90_000);
    expect(await ctx.tasks.get(id)).toMatchObject({ attempts: 2, exit_code: 0 });
    expect(readFileSync(call.rc, 'utf8')).toBe('0\n');
  });
});

describe('provisioning failure', () => {
  it('fails the queued tasks and removes their jobs (no job left to trigger more sbatch)', async () => {
    const work = tempDir('jtm-prov-');
    const sites = join(work, 'sites.json');
    writeFileSync(sites, JSON.stringify({ clusters: { test: { defaults: { partition: 'debug' } } } }));
    // A real sbatch and squeue that fail at once: a Slurm configuration naming no cluster.
    const slurmConf = join(work, 'slurm.conf');
    writeFileSync(slurmConf, '# no ClusterName\n');
    const env = testEnv({ JTM_SITE_CONFIG: sites, JTM_SBATCH_MAX_FAILURES: '1' });
    const ctx = await context(env);
    const id = await submit(env, ['-cmd', 'true', '-p', 'prov', '-cl', 'test', '-t', '00:05:00']);
    const pool = (await ctx.tasks.get(id))!.pool;
    const saved = process.env['SLURM_CONF'];
    process.env['SLURM_CONF'] = slurmConf;
    try {
      const report = await provisionDynamicPools(ctx, Date.now());
      expect(report).toMatchObject({ submitted: 0, failedPools: [pool] });
    } finally {
      if (saved === undefined) delete process.env['SLURM_CONF'];
      else process.env['SLURM_CONF'] = saved;
    }
    expect((await ctx.tasks.get(id))?.status_name).toBe('failed');
    const q = openPoolQueue(ctx, pool);
    try {
      expect(await q.getJob(jobIdOf(id))).toBeUndefined();
      expect(await q.getWaitingCount()).toBe(0);
    } finally {
      await q.close();
    }
  });

  it("a manager that cannot write a pool's batch script (its site config lacks the cluster) fails none of its tasks; the pool says why, until it books (adversary 25 F1)", async () => {
    const work = tempDir('jtm-prov-');
    const sites = join(work, 'sites.json');
    writeFileSync(sites, JSON.stringify({ clusters: { test: { defaults: { partition: 'debug' } } } }));
    const env = testEnv({ JTM_SITE_CONFIG: sites, JTM_SBATCH_MAX_FAILURES: '1' });
    const id = await submit(env, ['-cmd', 'true', '-p', 'cfg', '-cl', 'test', '-t', '00:05:00']);
    // A manager of the same site started without the site configuration: it knows only the cluster `local`.
    const { JTM_SITE_CONFIG: _, ...without } = env;
    const manager = await context(without);
    const ctx = await context(env);
    const pool = (await ctx.tasks.get(id))!.pool;
    for (let i = 0; i < 3; i++) {
      expect(await provisionDynamicPools(manager, Date.now() + i * 3_600_000)).toEqual({
        submitted: 0,
        failedPools: [],
      });
    }
    expect((await ctx.tasks.get(id))?.status_name).toBe('pending');
    const [info] = (await listPools(ctx)).filter(p => p.name === pool);
    expect(info?.slurm_error?.message).toMatch(
      /^this manager cannot book the pool's allocations: unknown cluster "test"/,
    );
    await runJtm(['kill', '-tid', String(id)], env);
  });

  it('a manager whose JTM_SITE_CONFIG cannot be read or parsed exits 1 with one line at its start', async () => {
    const work = tempDir('jtm-prov-');
    const bad = join(work, 'bad.json');
    writeFileSync(bad, '{bad json');
    for (const path of [bad, join(work, 'missing.json')]) {
      const r = await runJtm(['manager'], testEnv({ JTM_SITE_CONFIG: path }), { timeoutMs: 20_000 });
      expect([r.code, r.stderr.trim().split('\n').length], r.stderr).toEqual([1, 1]);
      expect(r.stderr).toMatch(/^jtm manager: .*site config/);
    }
  });
});
