import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { BIN, ROOT, runJtm, startJtm, taskIds, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { isAlive, tempDir, testEnv, waitFor } from '../helpers/env.js';

/*
 * Issue 13, "Leftovers found": when a worker and its pty host die together (kill -9 of both, the OOM killer),
 * the processes of its tasks live on (they have no controlling terminal to hang up); the next worker on the host kills and reports them, and never
 * touches a live run of another worker.
 */

function pgrep(args: string[]): number[] {
  try {
    return execFileSync('pgrep', args, { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const pidsOf = (marker: string): number[] => pgrep(['-f', `^${marker}$`]);
const killMarkers = (markers: string[]): void => {
  for (const m of markers) for (const p of pidsOf(m)) process.kill(p, 'SIGKILL');
};

/** Distinct sleep lengths per test file run: the markers of concurrent runs never collide. */
const BASE = 700_000 + Math.floor(Math.random() * 200_000) * 3;

describe('leftovers of dead workers', () => {
  // Beats every 2 s (a 6 s lease): on a loaded 2-core runner a worker late by a second self-fenced the live run this
  // file watches, which then ran again (a fresh-clone run failed so); leases are not what it tests.
  const env = testEnv({ JTM_HEARTBEAT_INTERVAL: '2s' });
  let ctx: JtmContext;
  let work = '';
  const markers: string[] = [];
  const workers: BackgroundProcess[] = [];

  /** One task that starts `nohup sleep` and `setsid sleep` then sleeps itself; waits for all three. */
  const startTask = async (
    pool: string,
    s: number,
  ): Promise<{ id: number; fg: string; detached: string[] }> => {
    const fg = `sleep ${s}`;
    const detached = [`sleep ${s + 1}`, `sleep ${s + 2}`];
    markers.push(fg, ...detached);
    const file = join(work, `${pool}.jsonl`);
    // First, how many detached sleeps of an earlier run are alive as this run starts (none, ever: G10).
    const command =
      `echo "earlier runs: $(pgrep -cf '^sleep ${s + 1}$')"; ` +
      `nohup sleep ${s + 1} >/dev/null 2>&1 & setsid sleep ${s + 2} & sleep ${s}`;
    writeFileSync(file, JSON.stringify({ command }));
    const [id] = taskIds((await runJtm(['submit', '-f', file, '-p', pool], env, { cwd: work })).stdout);
    await waitFor(
      () => [fg, ...detached].every(m => pidsOf(m).length === 1) || undefined,
      'task processes up',
    );
    return { id: id!, fg, detached };
  };
  const workerUp = (pool: string): Promise<void> => waitWorkers(env, pool, 1, 60_000);

  beforeAll(async () => {
    work = tempDir('jtm-leftovers-');
    ctx = await openTestContext(env);
  });
  afterAll(async () => {
    for (const w of workers) await w.stop('SIGKILL');
    killMarkers(markers);
    await closeContext(ctx);
  });

  it('worker and pty host killed together: the next worker kills the detached leftovers, reports them, then re-runs', async () => {
    // Its own process group (detached), so that the test can kill it without touching the test runner. The
    // next worker has the same id (a restart under systemd or a site script): its sweep then sees the lost
    // run as its worker's and spares it, and only the re-run's claim makes it lost (adversary 5 G10: the re-run
    // started ≈ 1 s before the leftovers were killed, two executions at once).
    const workerId = `lo-dead-${process.pid}`;
    // The lost run's job is re-delivered once its lock expires and the stalled check sees it: kept short.
    const fast = { ...env, JTM_LOCK_DURATION: '4s', JTM_STALLED_INTERVAL: '1s' };
    const child = spawn(
      process.execPath,
      [BIN, 'worker', '-p', 'lo-dead', '--slots', '1', '--worker_id', workerId],
      {
        env: fast,
        cwd: ROOT,
        detached: true,
        stdio: 'ignore',
      },
    );
    const exited = new Promise(r => child.on('exit', r));
    try {
      await workerUp('lo-dead');
      const { id, fg, detached } = await startTask('lo-dead', BASE);
      // Nothing of the task dies with them: it has no controlling terminal to hang up (as under Slurm, where a
      // step has none), so its shell, its foreground sleep and its nohup and setsid children live on.
      const survivors = [...detached, fg].map(m => pidsOf(m)[0]!);
      // The pty host is the worker's one child (fork, in its own process group). The worker is stopped
      // first so that it cannot react to its host's death (it would kill the leftovers itself); then both
      // die by SIGKILL, each with its whole process group, as the OOM killer or `kill -9 -<pgid>` would do.
      const worker = child.pid!;
      const hosts = pgrep(['-P', String(worker)]);
      expect(hosts).toHaveLength(1);
      process.kill(worker, 'SIGSTOP');
      process.kill(-hosts[0]!, 'SIGKILL');
      process.kill(-worker, 'SIGKILL');
      await exited;
      expect([...detached, fg].map(m => pidsOf(m)[0])).toEqual(survivors);

      // A worker id still alive is refused (another worker would hold it): the restart waits for its lease.
      await waitFor(
        async () => (await ctx.redis.exists(ctx.keys.workerAlive(workerId))) === 0 || undefined,
        "the killed worker's lease to end",
      );
      const next = startJtm(['worker', '-p', 'lo-dead', '--slots', '1', '--worker_id', workerId], fast);
      workers.push(next);
      // By pid: the re-run starts processes with the same command lines.
      await waitFor(() => !survivors.some(isAlive) || undefined, 'leftovers killed', 60_000);
      const rec = await waitFor(async () => {
        const r = await ctx.tasks.get(id);
        return r?.leftover_pids ? r : undefined;
      }, 'leftovers reported');
      const reported = rec.leftover_pids!.split(',').map(Number);
      for (const p of survivors) expect(reported).toContain(p);
      const events = await ctx.tasks.events(id);
      expect(events.map(e => e.reason)).toContain(
        `killed ${reported.length} leftover processes of a lost run on ${hostname()}`,
      );
      expect(next.output()).toContain('killed leftover processes of a lost run');
      // The re-run: started once the lost run's processes were gone.
      const rerun = await waitFor(async () => {
        const r = await ctx.tasks.get(id);
        const out = join(ctx.config.logDir, 'tasks', `${id}.out`);
        if (r?.attempts !== 2) return undefined;
        const text = existsSync(out) ? readFileSync(out, 'utf8') : '';
        return text.includes('\n') ? text : undefined;
      }, 'the re-run to start');
      expect(rerun).toBe('earlier runs: 0\n');
    } finally {
      if (child.exitCode === null && child.signalCode === null) process.kill(-child.pid!, 'SIGKILL');
    }
  });

  it('a live run of another worker on the host is left alone, and so are processes of other deployments', async () => {
    const owner = startJtm(['worker', '-p', 'lo-live', '--slots', '1'], env);
    workers.push(owner);
    await workerUp('lo-live');
    const { id, fg, detached } = await startTask('lo-live', BASE + 10);
    // Processes of another deployment on the host (another prefix or Redis, or a JTM without scopes): their
    // task ids and tokens mean nothing here, however they look; the sweep must not touch them either.
    const foreign = [`sleep ${BASE + 20}`, `sleep ${BASE + 21}`];
    markers.push(...foreign);
    const scopes = [{ JTM_TASK_SCOPE: 'another-deployment' }, {}];
    foreign.forEach((m, i) =>
      spawn('sleep', [m.split(' ')[1]!], {
        env: { PATH: env['PATH'], JTM_TASK_TOKEN: `f${i}`.repeat(12), JTM_TASK_ID: String(id), ...scopes[i] },
        detached: true,
        stdio: 'ignore',
      }).unref(),
    );
    await waitFor(() => foreign.every(m => pidsOf(m).length === 1) || undefined, 'foreign processes up');
    const before = [fg, ...detached, ...foreign].map(m => pidsOf(m)[0]);
    const other = startJtm(['worker', '-p', 'lo-live', '--slots', '1'], env);
    workers.push(other);
    // The newcomer's first sweep has seen the run and spared it.
    await waitFor(
      () => /processes of live runs of other workers left alone/.test(other.output()) || undefined,
      'the sweep of the second worker',
      60_000,
    );
    expect([fg, ...detached, ...foreign].map(m => pidsOf(m)[0])).toEqual(before);
    const rec = await ctx.tasks.get(id);
    expect(rec?.status_name).toBe('running');
    expect(rec?.leftover_pids).toBeUndefined();
    expect(other.output()).not.toContain('killed leftover processes');
  });
});
