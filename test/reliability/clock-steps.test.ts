// A worker's wall clock steps (NTP correcting it, a VM resumed) while its tasks run. Its lease, the start
// deadline its pty host checks, and the watchdogs between them are measured on the node's monotonic clock:
// on the wall clock, a step forward made the worker think its lease had lapsed right after renewing it and stop
// every running task (each then ran again), and a step back made the host refuse every start (adversary 8 I4).
// The step is libfaketime's, reading the offset from a file at each call, with the monotonic clock left alone,
// as a real step leaves it.
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { buildTask } from '../../src/tasks/task-spec.js';
import { submitTasks } from '../../src/tasks/submit-task.js';
import { ROOT, startJtm, type BackgroundProcess, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { describeIf, type Requirement } from '../helpers/requirements.js';

const libfaketime: Requirement & { path?: string } = (() => {
  // /usr/lib/<arch triplet>/faketime/ (Debian's faketime package).
  const path = readdirSync('/usr/lib')
    .map(arch => join('/usr/lib', arch, 'faketime', 'libfaketime.so.1'))
    .find(p => existsSync(p));
  return path
    ? { available: true, path }
    : { available: false, reason: 'libfaketime not found (apt-get install faketime)' };
})();

describeIf(libfaketime, "a step of the worker's wall clock", () => {
  const dir = tempDir('jtm-clock-');
  const offsetFile = join(dir, 'offset');
  const env = testEnv();
  const pool = 'clock-steps';
  let ctx: JtmContext;
  let worker: BackgroundProcess;

  beforeAll(async () => {
    writeFileSync(offsetFile, '+0\n');
    ctx = await openTestContext(env);
    worker = startJtm(['worker', '-p', pool, '--slots', '4'], {
      ...env,
      LD_PRELOAD: libfaketime.path!,
      FAKETIME_TIMESTAMP_FILE: offsetFile,
      FAKETIME_NO_CACHE: '1',
      DONT_FAKE_MONOTONIC: '1',
    });
    await waitWorkers(env, pool);
  });
  afterAll(async () => {
    await worker.stop();
    await closeContext(ctx);
  });

  it('forward then back: every task runs once, none is stopped or refused', async () => {
    const task = (command: string) => buildTask({ command }, { pool, cwd: ROOT, maxCommandBytes: 65536 });
    const before = await submitTasks(ctx, [task('sleep 4; echo one'), task('sleep 4; echo two')]);
    await new Promise(r => setTimeout(r, 1500));
    // Past the lease (1.5 s here): on the wall clock, the worker fenced both runs at its next check.
    writeFileSync(offsetFile, '+30s\n');
    await new Promise(r => setTimeout(r, 1500));
    // Back, past where it was: on the wall clock, every deadline the worker gave its host was long past.
    writeFileSync(offsetFile, '-30s\n');
    await new Promise(r => setTimeout(r, 500));
    const after = await submitTasks(ctx, [task('echo three')]);
    const records = await waitFor(
      async () => {
        const all = await Promise.all([...before, ...after].map(id => ctx.tasks.get(id)));
        return all.every(r => r && (r.status < 0 || r.status === 4)) ? all : undefined;
      },
      'every task to end',
      30_000,
    );
    expect(
      records.map(r => [r!.status_name, r!.attempts]),
      worker.output(),
    ).toEqual([
      ['success', 1],
      ['success', 1],
      ['success', 1],
    ]);
  });

  it("a dead worker whose clock runs an hour ahead of the manager's is found as soon as another (its beats are stamped in the future)", async () => {
    const aheadPool = 'clock-ahead';
    const manager = startJtm(['manager'], env);
    const ahead = startJtm(['worker', '-p', aheadPool], {
      ...env,
      LD_PRELOAD: libfaketime.path!,
      FAKETIME: '+1h',
      DONT_FAKE_MONOTONIC: '1',
    });
    try {
      await waitWorkers(env, aheadPool);
      const [id] = await submitTasks(ctx, [
        buildTask({ command: 'sleep 60' }, { pool: aheadPool, cwd: ROOT, maxCommandBytes: 65536 }),
      ]);
      await waitFor(async () => (await ctx.tasks.get(id!))?.status === 3, 'the task to run');
      await ahead.stop('SIGKILL');
      // Found by the sweep (1 s here) once its alive key has expired (1.5 s): before, only the reconciliation
      // pass (every 12 sweeps: 12 s) or another worker's stalled check (15 s) could see it. 10 s tells them apart
      // on a loaded machine too (6.2 s for 2.5 s at load 14).
      const t0 = Date.now();
      await waitFor(async () => (await ctx.tasks.get(id!))?.status_name === 'pending', 're-queued', 15_000);
      expect(Date.now() - t0, manager.output()).toBeLessThan(10_000);
    } finally {
      await ahead.stop('SIGKILL');
      await manager.stop();
    }
  });

  it("a worker whose clock is 30 s behind Redis's stamps its tasks with Redis's time: the run starts after its submit and lasts what it ran (F6)", async () => {
    const behindPool = 'clock-behind';
    const behind = startJtm(['worker', '-p', behindPool], {
      ...env,
      LD_PRELOAD: libfaketime.path!,
      FAKETIME: '-30s',
      DONT_FAKE_MONOTONIC: '1',
    });
    try {
      await waitWorkers(env, behindPool);
      // Its heartbeat has read Redis's clock (a reading with a slow round trip on a loaded runner is skipped).
      await waitFor(() => /clock is \d+ ms behind Redis's/.test(behind.output()), 'the offset', 15_000);
      const [id] = await submitTasks(ctx, [
        buildTask({ command: 'sleep 1.2' }, { pool: behindPool, cwd: ROOT, maxCommandBytes: 65536 }),
      ]);
      const rec = await waitFor(async () => {
        const r = await ctx.tasks.get(id!);
        return r?.status === 4 ? r : undefined;
      }, 'the task to succeed');
      // Before: started_at ≈ 30 s before queued_at, and the history's start and end at the submit's instant.
      const waited = rec.started_at! - rec.queued_at!;
      const ran = rec.ended_at! - rec.started_at!;
      expect([waited >= 0 && waited < 5000, ran >= 1150 && ran < 5000], `${waited} ${ran}`).toEqual([
        true,
        true,
      ]);
      const events = await ctx.tasks.events(id!);
      const started = events.find(e => e.to === 3)!;
      const ended = events.find(e => e.to === 4)!;
      expect(ended.t - started.t, JSON.stringify(events)).toBeGreaterThanOrEqual(1150);
      expect(behind.output()).toMatch(
        /clock is \d+ ms behind Redis's: records are stamped with Redis's time/,
      );
    } finally {
      await behind.stop();
    }
  });
});
