// A submit that gets SIGINT/SIGTERM either takes itself back (before its commit is sent: exit 128 + the signal,
// one stderr line, nothing runs) or finishes (after: every id printed, exit 0). Adversary 34 H1: a signal after
// the commit ended it 130/143, its ids printed or not, while its tasks ran — the task no one has the id of.
import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import type { JtmContext } from '../../src/context.js';
import { emptyReconcileCounts, reconcileBatch, SUBMIT_GRACE_MS } from '../../src/manager/reconcile.js';
import { TaskJobs } from '../../src/manager/task-jobs.js';
import { jobIdOf } from '../../src/tasks/job-data.js';
import { isCommitted } from '../../src/tasks/submit-commit.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { BIN, ROOT, taskIds } from '../helpers/cli.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { context, stopTracked } from '../helpers/tracked.js';

afterAll(stopTracked);

/**
 * A point in the submit's writes, the first bytes of its ids on stdout (it is ending: closing its connection,
 * then Node's own exit), or a number of milliseconds after it was started.
 */
type Moment = 'first record' | 'first job' | 'commit written' | 'ids printed' | number;

/** When the moment has come, read from Redis (polled every millisecond or so, while the submit writes). */
async function reached(ctx: JtmContext, moment: Moment, pool: string, startedAt: number): Promise<boolean> {
  if (typeof moment === 'number') return Date.now() - startedAt >= moment;
  if (moment === 'first record') return Number(await ctx.redis.get(ctx.keys.nextTaskId)) > 0;
  if (moment === 'ids printed') return false; // sent from the stdout listener
  if (moment === 'first job') return (await ctx.redis.exists(ctx.keys.poolJob(pool, jobIdOf(1)))) === 1;
  return (await ctx.redis.keys(`${ctx.keys.submitBase}*`)).length > 0;
}

/**
 * Runs `jtm submit` (as a process), sends `signals` once `moment` is reached (the second 5 ms after the first),
 * and checks the promise: exit 0 with every id printed and the submit committed, or a non-zero exit (128 + the
 * first signal), one stderr line, nothing committed and every record written failed.
 */
async function signalledSubmit(
  args: string[],
  n: number,
  moment: Moment,
  signals: NodeJS.Signals[],
  /** With 'ids printed': how long after the first bytes of ids the signals are sent. */
  afterIdsMs = 0,
): Promise<{ code: number; stage: string }> {
  const env = testEnv();
  const ctx = await context(env);
  const pool = args[args.indexOf('-p') + 1]!;
  const startedAt = Date.now();
  const child = spawn(process.execPath, [BIN, 'submit', ...args], {
    env,
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', d => {
    if (moment === 'ids printed' && stdout === '')
      setTimeout(() => {
        for (const signal of signals) if (!done) child.kill(signal);
      }, afterIdsMs);
    stdout += d;
  });
  child.stderr.on('data', d => (stderr += d));
  // Killed by the signal itself (no handler) reads as the shell would say it: 128 + the signal's number.
  const exited = new Promise<number>(r =>
    child.on('exit', (code, sig) => r(code ?? 128 + constants.signals[sig as NodeJS.Signals])),
  );
  let done = false;
  void exited.then(() => (done = true));
  if (moment !== 'ids printed') {
    await waitFor(async () => done || (await reached(ctx, moment, pool, startedAt)), `${moment}`, 60_000, 1);
    for (const [i, signal] of signals.entries()) {
      if (i > 0) await new Promise(r => setTimeout(r, 5));
      if (!done) child.kill(signal);
    }
  }
  const code = await exited;
  const commits = await Promise.all(
    (await ctx.redis.keys(`${ctx.keys.submitBase}*`)).map(k => ctx.redis.get(k)),
  );
  const written = Number(await ctx.redis.get(ctx.keys.nextTaskId));
  const ids = taskIds(stdout);
  if (code === 0) {
    expect(ids, stderr).toHaveLength(n);
    expect(commits.filter(isCommitted).map(Number)).toEqual([n]);
    return { code, stage: 'finished' };
  }
  expect(code, `${stderr} (${ids.length} ids printed)`).toBe(128 + constants.signals[signals[0]!]);
  expect(commits.filter(isCommitted), 'a submit that exited non-zero committed').toEqual([]);
  // Killed while Node was still loading, before the submit had its handlers (and before it wrote anything):
  // Node's default action, nothing to take back.
  if (written === 0 && stderr === '') return { code, stage: 'ended before it wrote anything' };
  expect(stderr.split('\n').filter(Boolean), 'one stderr line').toHaveLength(1);
  expect(stderr).toMatch(/^jtm submit: .*taken back/);
  // Nothing of it can start: its records (any it wrote) are failed, not left queued or pending; a second
  // signal ends it at once, leaving the rest queued, uncommitted, for the manager's reconciliation to fail.
  const queued: number[] = [];
  for (let id = 1; id <= written; id++) {
    const status = (await ctx.tasks.get(id))?.status;
    if (status === TaskStatus.queued && signals.length > 1) queued.push(id);
    else expect([id, status]).toEqual([id, TaskStatus.failed]);
  }
  if (queued.length > 0) {
    const counts = emptyReconcileCounts();
    const jobs = new TaskJobs(ctx);
    for (let cursor: number | undefined = 0; cursor !== undefined;)
      cursor = await reconcileBatch(ctx, jobs, cursor, counts, Date.now() + SUBMIT_GRACE_MS + 1000);
    await jobs.close();
    expect(counts.submitFailed).toBe(queued.length);
  }
  return { code, stage: `taken back (${written} records, ${queued.length} left queued)` };
}

describe('a submit interrupted by a signal', () => {
  const dir = testEnv()['JTM_LOG_DIR']!;
  const n = 5000;
  const file = join(dir, 'bulk.jsonl');
  writeFileSync(
    file,
    `${Array.from({ length: n }, (_, i) => JSON.stringify({ command: `echo ${i}` })).join('\n')}\n`,
  );

  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    for (const moment of ['first record', 'first job', 'commit written'] as const) {
      it(`-f with ${n} tasks, ${signal} at its ${moment}: exit 0 with every id, or taken back`, async () => {
        const r = await signalledSubmit(['-f', file, '-p', 'sig'], n, moment, [signal]);
        process.stderr.write(`${signal} at ${moment}: exit ${r.code}, ${r.stage}\n`);
        // A signal once the commit is written can no longer take it back: the submit finishes.
        if (moment === 'commit written') expect(r.code).toBe(0);
      });
    }
    // Started to exited takes ~100 ms on an idle machine: the delays fall before and after the commit.
    for (const moment of ['first record', 'commit written', 40, 70, 100] as const) {
      it(`one task, ${signal} at its ${moment}: exit 0 with its id, or taken back`, async () => {
        const r = await signalledSubmit(['-cmd', 'echo one', '-p', 'one'], 1, moment, [signal]);
        process.stderr.write(`one task, ${signal} at ${moment}: exit ${r.code}, ${r.stage}\n`);
      });
    }
  }

  // Node's own exit closed the signal watchers before the process ended, and the default action came back: a
  // signal there ended a submit 143 with its id printed and committed (2 in 300 one-task submits).
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`one task, ${signal} 0 to 7 ms after its id is printed (it is ending), 24 times: exit 0 every time`, async () => {
      // Measured: ≈ 6 ms from the id on stdout to the exit of a one-task submit.
      for (let i = 0; i < 24; i++) {
        const r = await signalledSubmit(['-cmd', 'echo one', '-p', 'end'], 1, 'ids printed', [signal], i % 8);
        expect(r.code, r.stage).toBe(0);
      }
    });
  }

  for (const moment of ['first job', 'commit written'] as const) {
    it(`a second signal 5 ms after the first, at its ${moment}, keeps the promise too`, async () => {
      const r = await signalledSubmit(['-f', file, '-p', 'sig2'], n, moment, ['SIGINT', 'SIGTERM']);
      process.stderr.write(`two signals at ${moment}: exit ${r.code}, ${r.stage}\n`);
      if (moment === 'commit written') expect(r.code).toBe(0);
    });
  }
});
