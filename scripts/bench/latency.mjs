// Benchmark 2: submit → start latency with an idle worker, one task at a time, p50 / p99, against a bare
// BullMQ Queue.add → processor start. Both stamp Date.now() (1 ms resolution) on the same clock.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { Queue } from 'bullmq';

import { jtmEnv, jtmModule, makeTasks, openJtm, startWorkerProcess, waitAllFinal } from './lib/jtm.mjs';
import { median, percentile, sleep } from './lib/stats.mjs';

/** Pause between submissions, so that the worker is idle when each task arrives. */
const GAP_MS = 25;

async function jtmLatencies(redisUrl, n) {
  const { ctx, close } = await openJtm(redisUrl);
  const { submitTasks } = await jtmModule('tasks/submit-task.js');
  const tasks = await makeTasks(n, 1);
  const worker = await startWorkerProcess(redisUrl, ctx, tasks[0].pool, 4);
  try {
    const submitted = [];
    for (const t of tasks) {
      const t0 = Date.now();
      const [id] = await submitTasks(ctx, [t]);
      submitted.push([id, t0, Date.now()]);
      await sleep(GAP_MS);
    }
    await waitAllFinal(ctx, 60_000);
    const p = ctx.redis.pipeline();
    for (const [id] of submitted) p.hget(ctx.keys.task(id), 'started_at');
    const res = await p.exec();
    const latencies = submitted.map(([, t0], i) => Number(res[i][1]) - t0);
    // Where the tail comes from: the submit call itself, or the worker after it returned (its fetch and
    // claim; a job fetched before the submit's commit is claimed again after a short wait).
    latencies.steps = {
      submit: submitted.map(([, t0, t1]) => t1 - t0),
      afterSubmit: submitted.map(([, , t1], i) => Number(res[i][1]) - t1),
    };
    return latencies;
  } finally {
    await worker.stop();
    await close();
  }
}

async function bareLatencies(redisUrl, n) {
  const { ctx, close } = await openJtm(redisUrl);
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL('./lib/bare-worker.mjs', import.meta.url)), redisUrl, 'bare'],
    {
      env: jtmEnv(redisUrl),
      stdio: 'ignore',
    },
  );
  const queue = new Queue('bare', { connection: ctx.redis });
  try {
    while ((await ctx.redis.get('bench:ready')) !== '1') await sleep(20);
    const sent = [];
    for (let i = 0; i < n; i++) {
      const t0 = Date.now();
      const job = await queue.add('j', { i }, { removeOnComplete: true });
      sent.push([job.id, t0]);
      await sleep(GAP_MS);
    }
    await sleep(200);
    const started = await ctx.redis.hgetall('bench:started');
    return sent.map(([id, t0]) => Number(started[id]) - t0).filter(Number.isFinite);
  } finally {
    await queue.close();
    child.kill('SIGTERM');
    await close();
  }
}

export async function run({ quick, redisUrl, log }) {
  const n = quick ? 150 : 1000;
  const jtm = await jtmLatencies(redisUrl, n);
  const bare = await bareLatencies(redisUrl, n);
  const { submit, afterSubmit } = jtm.steps;
  log(
    `  jtm p50 ${median(jtm)} p99 ${percentile(jtm, 99)} (submit call p50 ${median(submit)} p99 ${percentile(submit, 99)}, ` +
      `then to the claim p50 ${median(afterSubmit)} p99 ${percentile(afterSubmit, 99)}); ` +
      `bare p50 ${median(bare)} p99 ${percentile(bare, 99)}`,
  );
  // A 0 ms baseline (sub-millisecond) would make the ratio infinite: floor it at the clock resolution.
  const base50 = Math.max(1, median(bare));
  const label = `2. submit → start, idle worker (${n} tasks, 1 ms clock)`;
  return [
    {
      id: '2',
      figure: `${label}: p50`,
      value: median(jtm),
      unit: ' ms',
      baselineName: 'BullMQ add → processor',
      baseline: median(bare),
      ratio: median(jtm) / base50,
      target: '≤ 1.5 ×',
      pass: median(jtm) / base50 <= 1.5,
    },
    {
      id: '2',
      figure: `${label}: p99`,
      value: percentile(jtm, 99),
      unit: ' ms',
      baselineName: 'BullMQ add → processor',
      baseline: percentile(bare, 99),
      ratio: percentile(jtm, 99) / Math.max(1, percentile(bare, 99)),
      target: '≤ 20 ms',
      pass: percentile(jtm, 99) <= 20,
    },
  ];
}
