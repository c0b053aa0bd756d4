// A submit that does not exit 0 leaves no task that will run (issue 13, item 6): workers start a queued task
// only once its submit is committed, and reconciliation fails the others.
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { emptyReconcileCounts, reconcileBatch, SUBMIT_GRACE_MS } from '../../src/manager/reconcile.js';
import { TaskJobs } from '../../src/manager/task-jobs.js';
import { jobDataFromRecord, jobIdOf, TASK_JOB_NAME, taskJobOptions } from '../../src/tasks/job-data.js';
import { openPoolQueue } from '../../src/tasks/pool-queue.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { runJtm, taskIds } from '../helpers/cli.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { context, start, stopTracked } from '../helpers/tracked.js';

afterAll(stopTracked);

describe('submit commit', () => {
  it('tasks of a submit that died before its commit never start and are failed by reconciliation', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const dir = env['JTM_LOG_DIR']!;
    start(['worker', '-p', 'sc', '--slots', '4'], env);
    // A submit that wrote its records and jobs, and died before its commit (as a SIGKILL mid-way leaves it).
    const fields = Array.from({ length: 12 }, () => ({
      command: `touch ${dir}/ran-$JTM_TASK_ID`,
      pool: 'sc',
      max_retries: 1,
      submit_id: 'killed-submit',
    }));
    const ids = await ctx.tasks.createMany(fields, Date.now() - SUBMIT_GRACE_MS - 1000);
    const q = openPoolQueue(ctx, 'sc');
    await q.addBulk(
      ids.map((id, i) => ({
        name: TASK_JOB_NAME,
        data: jobDataFromRecord({ id, ...fields[i]! }),
        opts: taskJobOptions(id),
      })),
    );
    // A later, complete submit on the same pool runs: the worker is up and fetching.
    const ok = await runJtm(['submit', '-cmd', `touch ${dir}/ok`, '-p', 'sc'], env);
    expect(ok.code).toBe(0);
    const [okId] = taskIds(ok.stdout);
    await waitFor(
      async () => (await ctx.tasks.status(okId!)) === TaskStatus.success,
      'the complete submit ran',
    );
    // Every uncommitted job has been fetched at least once by now (they were queued first, and none waits).
    await waitFor(async () => ((await q.getJobCounts('wait')).wait ?? 0) === 0, 'uncommitted jobs fetched');
    await waitFor(
      async () => ((await q.getJobCounts('delayed')).delayed ?? 0) > 0,
      'uncommitted jobs deferred',
    );
    for (const id of ids) {
      expect(await ctx.tasks.status(id)).toBe(TaskStatus.queued);
      expect(existsSync(join(dir, `ran-${id}`))).toBe(false);
    }
    const counts = emptyReconcileCounts();
    const jobs = new TaskJobs(ctx);
    await reconcileBatch(ctx, jobs, 0, counts, Date.now());
    expect(counts.submitFailed).toBe(ids.length);
    for (const id of ids) {
      expect(await ctx.tasks.get(id)).toMatchObject({
        status: TaskStatus.failed,
        reason: 'submit did not complete',
      });
      // Removed; one the worker holds at this moment is skipped when it claims it again.
      expect(['unknown', 'active', 'completed']).toContain(await q.getJobState(jobIdOf(id)));
    }
    await Promise.all([jobs.close(), q.close()]);
  });

  it('a bulk submit SIGKILLed mid-way: whatever it wrote, no task of it runs unless it committed', async () => {
    const env = testEnv();
    const ctx = await context(env);
    const dir = env['JTM_LOG_DIR']!;
    const file = join(dir, 'bulk.jsonl');
    const n = 5000;
    writeFileSync(
      file,
      Array.from({ length: n }, () => JSON.stringify({ command: `touch ${dir}/ran-$JTM_TASK_ID` })).join(
        '\n',
      ) + '\n',
    );
    start(['worker', '-p', 'sk', '--slots', '4'], env);
    const submit = start(['submit', '-f', file, '-p', 'sk'], env);
    // Killed as soon as its first jobs are in the queue (before its commit, unless Redis is very fast).
    const firstJob = ctx.keys.poolJob('sk', jobIdOf(1));
    await waitFor(async () => (await ctx.redis.exists(firstJob)) === 1, 'first job queued', 60_000, 2);
    submit.child.kill('SIGKILL');
    expect(await submit.exited).not.toBe(0);
    const committed = (await ctx.redis.keys(`${ctx.keys.submitBase}*`)).length > 0;
    const last = Number(await ctx.redis.get(ctx.keys.nextTaskId));
    process.stderr.write(`bulk submit killed: ${last} records written, committed: ${committed}\n`);
    // Give the worker time to fetch and (not) start them.
    await new Promise(r => setTimeout(r, 3000));
    if (!committed) {
      for (let id = 1; id <= last; id++) expect(existsSync(join(dir, `ran-${id}`))).toBe(false);
      const counts = emptyReconcileCounts();
      const jobs = new TaskJobs(ctx);
      for (let cursor: number | undefined = 0; cursor !== undefined;)
        cursor = await reconcileBatch(ctx, jobs, cursor, counts, Date.now() + SUBMIT_GRACE_MS + 1000);
      await jobs.close();
      expect(counts.submitFailed).toBe(last);
    }
  });
});
