// A submit whose connection fails after some of its records were written and before its commit is tried again
// (JTM_SUBMIT_RETRY) as the same submit: the retry is answered the ids of the chunks already written, adds the
// same jobs again and commits them. Each try used to be a new submit: `jtm submit -cmd …` whose replies were held
// 4 s printed `JTM task ID 606` and left record 605 (the same command), failed "submit did not complete" 88 s
// later by the manager: a phantom failed task in `jtm report`, ids burnt (adversary 26 F6).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { forTask } from '../../src/context.js';
import { connect } from '../../src/index.js';
import { emptyReconcileCounts, reconcileBatch, SUBMIT_GRACE_MS } from '../../src/manager/reconcile.js';
import { TaskJobs } from '../../src/manager/task-jobs.js';
import { CREATE_TASKS } from '../../src/redis/scripts.js';
import { keysFor, shardOfPool } from '../../src/redis/shards.js';
import { TaskStatus } from '../../src/tasks/status.js';
import { runJtm, taskIds } from '../helpers/cli.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { wiredProxy } from '../helpers/tcp-proxy.js';
import { context, start, stopTracked } from '../helpers/tracked.js';

afterAll(stopTracked);

/** One command of a RESP request stream (an array of bulk strings, as ioredis sends), and the bytes after it. */
function takeCommand(buf: Buffer): { raw: Buffer; args: Buffer[]; rest: Buffer } | undefined {
  const lineEnd = (from: number): number => buf.indexOf('\r\n', from);
  let at = lineEnd(0);
  if (at < 0 || buf[0] !== 0x2a) return undefined;
  const n = Number(buf.subarray(1, at).toString());
  let pos = at + 2;
  const args: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    at = lineEnd(pos);
    if (at < 0) return undefined;
    const len = Number(buf.subarray(pos + 1, at).toString());
    const start = at + 2;
    if (buf.length < start + len + 2) return undefined;
    args.push(buf.subarray(start, start + len));
    pos = start + len + 2;
  }
  return { raw: buf.subarray(0, pos), args, rest: buf.subarray(pos) };
}

/**
 * A proxy to `env`'s Redis that passes commands one by one until the `nth` create-tasks call (the one naming a
 * `:create-call:` key): that one is passed on (`applied`) or not (`dropped`), and from then on Redis is silent
 * for `silenceMs`, as a Redis stopped (SIGSTOP) or a partition makes it: nothing more is passed either way on
 * the connections open then, and new connections get no answer until the silence is over; later ones pass.
 * The script is loaded first: a call answered NOSCRIPT (then sent again with its text) writes nothing.
 */
async function createCutter(
  env: Record<string, string>,
  nth: number,
  mode: 'applied' | 'dropped',
  silenceMs: number,
) {
  await (await context(env)).redis.script('LOAD', CREATE_TASKS);
  const port = Number(new URL(env['REDIS_URL']!).port);
  let calls = 0;
  let cutAt: number | undefined;
  const silencers = new Set<() => void>();
  const proxy = await wiredProxy(port, (client, toRedis) => {
    if (cutAt !== undefined && Date.now() - cutAt < silenceMs) return;
    const server = toRedis();
    let silent = false;
    silencers.add(() => (silent = true));
    let pending: Buffer = Buffer.alloc(0);
    client.on('data', chunk => {
      pending = Buffer.concat([pending, chunk]);
      for (let c = takeCommand(pending); c; c = takeCommand(pending)) {
        pending = c.rest;
        if (silent) continue;
        if (cutAt === undefined && c.args.some(a => a.includes(':create-call:')) && ++calls === nth) {
          if (mode === 'applied') server.write(c.raw);
          cutAt = Date.now();
          for (const s of silencers) s();
          continue;
        }
        server.write(c.raw);
      }
    });
    server.on('data', chunk => silent || client.write(chunk));
  });
  return {
    url: proxy.url,
    cut: () => cutAt !== undefined,
    close: proxy.close,
  };
}

/** Every id whose record exists on a shard of `env` (its id counter tells up to where), in order. */
async function recordIds(env: Record<string, string>, shards: number): Promise<number[]> {
  const ctx = await context(env);
  const ids: number[] = [];
  for (let k = 0; k < shards; k++) {
    const keys = keysFor(env['JTM_PREFIX']!, k, shards);
    const last = Number((await ctx.redis.get(keys.nextTaskId)) ?? 0);
    for (let c = 1; c <= last; c++)
      if ((await ctx.redis.exists(keys.task(c * shards + k))) === 1) ids.push(c * shards + k);
  }
  return ids.sort((a, b) => a - b);
}

/** Each of `ids` ran once and succeeded (no record of them failed "submit did not complete"). */
async function expectRanOnce(env: Record<string, string>, ids: readonly number[]): Promise<void> {
  const ctx = await context(env);
  await waitFor(
    async () => {
      for (const id of ids)
        if ((await forTask(ctx, id).tasks.status(id)) !== TaskStatus.success) return false;
      return true;
    },
    `the ${ids.length} tasks to succeed`,
    90_000,
    200,
  );
  for (const id of ids) {
    const rec = await forTask(ctx, id).tasks.get(id);
    expect([id, rec?.status_name, rec?.attempts]).toEqual([id, 'success', 1]);
  }
}

/** What a try needs to fail on the silence and the next to get through: JTM_SUBMIT_RETRY well past it. */
const RETRY = { JTM_CONNECT_TIMEOUT: '1s', JTM_SUBMIT_RETRY: '10s' };

describe('a submit tried again after its records were written', () => {
  for (const via of ['cli', 'api'] as const) {
    it(`${via}: one task whose create-tasks applied and whose answer never came: the retry gets the same id, one record, it runs once (adversary 26 F6)`, async () => {
      const env = testEnv(RETRY);
      const proxy = await createCutter(env, 1, 'applied', 3000);
      start(['worker', '-p', 'resub', '--slots', '2'], env);
      try {
        const through = { ...env, REDIS_URL: proxy.url };
        let given: number[];
        if (via === 'cli') {
          const r = await runJtm(['submit', '-p', 'resub', '-cmd', 'echo ran'], through);
          expect(r.code, r.stderr).toBe(0);
          given = taskIds(r.stdout);
        } else {
          const jtm = await connect({ env: through });
          try {
            given = await jtm.submit({ command: 'echo ran' }, { pool: 'resub' });
          } finally {
            await jtm.close();
          }
        }
        expect(proxy.cut(), 'the connection went silent at the create').toBe(true);
        expect(given).toEqual([1]);
        // Before: a second record (the retry's, id 2) and record 1 left queued, then failed.
        expect(await recordIds(env, 1)).toEqual([1]);
        await expectRanOnce(env, given);
      } finally {
        proxy.close();
      }
    });
  }

  it('a bulk submit whose first chunk was written and the second not: the retry keeps the first, writes the rest, ids consecutive, each runs once', async () => {
    const env = testEnv(RETRY);
    const n = 300; // two create-tasks chunks (250 + 50)
    const file = join(env['JTM_LOG_DIR']!, 'tasks.jsonl');
    writeFileSync(
      file,
      Array.from({ length: n }, () => JSON.stringify({ command: 'true' })).join('\n') + '\n',
    );
    const proxy = await createCutter(env, 2, 'dropped', 3000);
    start(['worker', '-p', 'resubbulk', '--slots', '8'], env);
    try {
      const r = await runJtm(['submit', '-p', 'resubbulk', '-f', file], { ...env, REDIS_URL: proxy.url });
      expect(r.code, r.stderr).toBe(0);
      expect(proxy.cut()).toBe(true);
      const given = taskIds(r.stdout);
      const consecutive = Array.from({ length: n }, (_, i) => i + 1);
      expect(given).toEqual(consecutive);
      expect(await recordIds(env, 1)).toEqual(consecutive);
      await expectRanOnce(env, given);
    } finally {
      proxy.close();
    }
  });

  it('JTM_SHARDS=2, pools on both shards, one shard written and the other not: the retry commits exactly the ids given', async () => {
    const env = testEnv({ ...RETRY, JTM_SHARDS: '2' });
    const pools = ['resa', 'resb', 'resc', 'resd', 'rese'];
    const a = pools.find(p => shardOfPool(p, 2) === 0)!;
    const b = pools.find(p => shardOfPool(p, 2) === 1)!;
    // a's chunk (written) goes first, then b's (dropped): the silence comes between them.
    const proxy = await createCutter(env, 2, 'dropped', 3000);
    start(['worker', '-p', a, '--slots', '4'], env);
    start(['worker', '-p', b, '--slots', '4'], env);
    try {
      const jtm = await connect({ env: { ...env, REDIS_URL: proxy.url } });
      let given: number[];
      try {
        given = await jtm.submit([
          ...Array.from({ length: 5 }, () => ({ command: 'true', pool: { name: a } })),
          ...Array.from({ length: 5 }, () => ({ command: 'true', pool: { name: b } })),
        ]);
      } finally {
        await jtm.close();
      }
      expect(proxy.cut()).toBe(true);
      expect(given).toHaveLength(10);
      expect(await recordIds(env, 2)).toEqual([...given].sort((x, y) => x - y));
      await expectRanOnce(env, given);
    } finally {
      proxy.close();
    }
  });

  it('Redis silent past JTM_SUBMIT_RETRY after the records were written: exit 255, nothing of it runs, reconciliation fails the records', async () => {
    const env = testEnv({ JTM_CONNECT_TIMEOUT: '1s', JTM_SUBMIT_RETRY: '2s' });
    const proxy = await createCutter(env, 1, 'applied', 60_000);
    const dir = env['JTM_LOG_DIR']!;
    start(['worker', '-p', 'resubgone', '--slots', '2'], env);
    try {
      const r = await runJtm(['submit', '-p', 'resubgone', '-cmd', `touch ${dir}/ran`], {
        ...env,
        REDIS_URL: proxy.url,
      });
      expect(proxy.cut()).toBe(true);
      expect([r.code, r.stdout]).toEqual([255, '']);
      // Written by the first try, left to the next ones, which never reached Redis: no commit, not run.
      expect(await recordIds(env, 1)).toEqual([1]);
      const ctx = await context(env);
      expect(await ctx.tasks.status(1)).toBe(TaskStatus.queued);
      const counts = emptyReconcileCounts();
      const jobs = new TaskJobs(ctx);
      for (let cursor: number | undefined = 0; cursor !== undefined;)
        cursor = await reconcileBatch(ctx, jobs, cursor, counts, Date.now() + SUBMIT_GRACE_MS + 1000);
      await jobs.close();
      expect(await ctx.tasks.get(1)).toMatchObject({
        status: TaskStatus.failed,
        reason: 'submit did not complete',
      });
      expect(existsSync(join(dir, 'ran'))).toBe(false);
    } finally {
      proxy.close();
    }
  });
});
