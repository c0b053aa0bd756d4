// A submit that does not exit 0 leaves no task that will run (issue 13, item 6): workers start a queued task
// only once its submit is committed, and reconciliation fails the others.
import { existsSync, writeFileSync } from 'node:fs';
import { type AddressInfo, connect as netConnect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { emptyReconcileCounts, reconcileBatch, SUBMIT_GRACE_MS } from '../../src/manager/reconcile.js';
import { TaskJobs } from '../../src/manager/task-jobs.js';
import { jobDataFromRecord, jobIdOf, TASK_JOB_NAME, taskJobOptions } from '../../src/tasks/job-data.js';
import { openPoolQueue } from '../../src/tasks/pool-queue.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { connect } from '../../src/index.js';
import { runJtm, taskIds } from '../helpers/cli.js';
import { COMMIT_SUBMIT } from '../../src/redis/scripts.js';
import { isCommitted } from '../../src/tasks/submit-commit.js';
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

  /**
   * A proxy to the test's Redis whose connection goes silent at the submit's commit (the first command naming
   * a `:submit:` key other than a create-tasks call, which names it too), as a Redis stopped (SIGSTOP) or a partition makes it: nothing more is passed either way
   * on it, the client left to give up: `applied` sends the commit on to Redis first; `late` holds it and sends
   * it 3 s later on the same server connection (a stopped Redis reads the command when it resumes, after the
   * client gave up on it); `dropped` never sends it. Later connections pass through, or with `laterSilent` get
   * no answer at all (Redis gone quiet for longer than the submit's JTM_SUBMIT_RETRY).
   */
  async function commitCutter(redisUrl: string, mode: 'applied' | 'late' | 'dropped', laterSilent = false) {
    const port = Number(new URL(redisUrl).port);
    let cut = false;
    let lateSent: Promise<void> = Promise.resolve();
    const sockets: Socket[] = [];
    const holdingOf = new Map<Socket, (v: boolean) => void>();
    const proxy = createServer(client => {
      sockets.push(client);
      if (cut && laterSilent) return void client.on('error', () => {});
      const server = netConnect(port, '127.0.0.1');
      sockets.push(client, server);
      let replies = true;
      server.on('data', chunk => replies && client.writable && client.write(chunk));
      client.on('data', chunk => {
        if (!cut && chunk.includes(':submit:') && !chunk.includes(':create-call:')) {
          cut = true;
          replies = false;
          // Silent from here on, the client left open: it gives up after JTM_CONNECT_TIMEOUT (a stopped Redis).
          if (mode === 'applied') {
            server.write(chunk);
          } else if (mode === 'late') {
            holdingOf.get(client)?.(true);
            lateSent = new Promise(r =>
              setTimeout(() => {
                server.write(chunk);
                setTimeout(() => {
                  server.destroy();
                  r();
                }, 200);
              }, 3000),
            );
          }
          return;
        }
        if (!replies) return;
        server.write(chunk);
      });
      let holding = false;
      client.on('error', () => {});
      client.on('close', () => holding || server.destroy());
      server.on('error', () => client.destroy());
      server.on('close', () => client.destroy());
      // The connection whose commit is held stays open on Redis's side until the commit is sent.
      holdingOf.set(client, v => (holding = v));
    });
    await new Promise<void>(r => proxy.listen(0, '127.0.0.1', () => r()));
    return {
      url: `redis://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
      cutDone: () => cut,
      lateSent: () => lateSent,
      close: () => {
        for (const so of sockets) so.destroy();
        proxy.close();
      },
    };
  }

  /** One task submitted through `url` (jtm submit, or the API's submit): the ids it gave. */
  async function submitThrough(via: 'cli' | 'api', direct: Record<string, string>, url: string) {
    // Both give up on a silent connection after JTM_CONNECT_TIMEOUT and settle within JTM_SUBMIT_RETRY.
    const env = { ...direct, REDIS_URL: url, JTM_CONNECT_TIMEOUT: '1s', JTM_SUBMIT_RETRY: '10s' };
    if (via === 'cli') {
      const r = await runJtm(['submit', '-cmd', 'true', '-p', 'lostcommit'], env, { timeoutMs: 20_000 });
      expect(r.code, r.stderr).toBe(0);
      return taskIds(r.stdout);
    }
    const jtm = await connect({ env });
    try {
      return await jtm.submit({ command: 'true' }, { pool: 'lostcommit' });
    } finally {
      await jtm.close();
    }
  }

  for (const via of ['cli', 'api'] as const) {
    for (const mode of ['applied', 'late'] as const) {
      it(`${via}: a commit whose answer was lost (${mode === 'applied' ? 'applied' : 'read by Redis after the client gave up'}) is settled: the id given is committed, any other record failed, for good`, async () => {
        const direct = testEnv();
        const ctx = await context(direct);
        await ctx.redis.script('LOAD', COMMIT_SUBMIT); // the commit forwarded is applied, not answered NOSCRIPT
        const proxy = await commitCutter(direct['REDIS_URL']!, mode);
        try {
          const given = await submitThrough(via, direct, proxy.url);
          expect(proxy.cutDone()).toBe(true);
          expect(given).toHaveLength(1);
          await proxy.lateSent();
          const last = Number(await ctx.redis.get(ctx.keys.nextTaskId));
          // Taken back and made again when the commit had not been applied: two records then.
          expect(last).toBe(mode === 'applied' ? 1 : 2);
          for (let id = 1; id <= last; id++) {
            const rec = await ctx.tasks.get(id);
            const commit = await ctx.redis.get(ctx.keys.submit(rec!.submit_id!));
            if (id === given[0]) {
              expect([id, rec?.status, isCommitted(commit)]).toEqual([id, TaskStatus.pending, true]);
            } else {
              expect([id, rec?.status, commit]).toEqual([id, TaskStatus.failed, '0']);
            }
          }
        } finally {
          proxy.close();
        }
      });
    }
  }

  for (const mode of ['applied', 'dropped'] as const) {
    it(`a commit whose answer is lost and Redis silent past JTM_SUBMIT_RETRY (${mode}): jtm submit gives the ids, exit 0, and says the outcome is not known; the API rejects SUBMIT_UNSETTLED with them; each task runs or ends failed, once (adversary 26 F1)`, async () => {
      // It exited 255 with no id while the commit had been applied: the tasks ran, unseen by Cromwell.
      const direct = testEnv();
      const ctx = await context(direct);
      // The commit is a script run (COMMIT_SUBMIT): cached in Redis, so that the command forwarded is applied as
      // such (an EVALSHA Redis has not seen answers NOSCRIPT, and the cut answer would hide it).
      await ctx.redis.script('LOAD', COMMIT_SUBMIT);
      const env = { JTM_CONNECT_TIMEOUT: '1s', JTM_SUBMIT_RETRY: '2s' };
      const cli = await commitCutter(direct['REDIS_URL']!, mode, true);
      const api = await commitCutter(direct['REDIS_URL']!, mode, true);
      try {
        const r = await runJtm(['submit', '-cmd', 'true', '-p', 'unsettled'], {
          ...direct,
          ...env,
          REDIS_URL: cli.url,
        });
        expect(r.code, r.stderr).toBe(0);
        const [given] = taskIds(r.stdout);
        expect(r.stderr.trim().split('\n')).toEqual([
          expect.stringMatching(
            new RegExp(
              `^jtm submit: Redis stopped answering after this submit's commit was sent: its 1 task\\(s\\) \\(JTM task IDs ${given}\\) run if`,
            ),
          ),
        ]);
        const jtm = await connect({ env: { ...direct, ...env, REDIS_URL: api.url } });
        let viaApi: number | undefined;
        try {
          const err = await jtm.submit({ command: 'true' }, { pool: 'unsettled' }).then(
            () => undefined,
            (e: unknown) => e as { code?: string; ids?: number[] },
          );
          expect(err?.code).toBe('SUBMIT_UNSETTLED');
          expect(err?.ids).toHaveLength(1);
          viaApi = err?.ids?.[0];
        } finally {
          await jtm.close();
        }
        // Applied: committed, the task runs; dropped: not committed, reconciliation fails it (never both).
        for (const id of [given!, viaApi!]) {
          const rec = await ctx.tasks.get(id);
          const commit = await ctx.redis.get(ctx.keys.submit(rec!.submit_id!));
          expect([id, isCommitted(commit)]).toEqual([id, mode === 'applied']);
          // An applied commit marks its tasks pending in the same script run; a dropped one leaves them queued.
          expect(rec?.status).toBe(mode === 'applied' ? TaskStatus.pending : TaskStatus.queued);
        }
        const counts = emptyReconcileCounts();
        const jobs = new TaskJobs(ctx);
        for (let cursor: number | undefined = 0; cursor !== undefined;)
          cursor = await reconcileBatch(ctx, jobs, cursor, counts, Date.now() + SUBMIT_GRACE_MS + 1000);
        await jobs.close();
        for (const id of [given!, viaApi!])
          expect((await ctx.tasks.get(id))?.status).toBe(
            mode === 'applied' ? TaskStatus.pending : TaskStatus.failed,
          );
      } finally {
        cli.close();
        api.close();
      }
    });
  }
});
