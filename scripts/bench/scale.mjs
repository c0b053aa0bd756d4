// Benchmark 4: many tasks queued over 50 pools. Submit rate through the API (submitTasks, in batches) and
// through `jtm submit -f` with a JSON-lines file, against BullMQ addBulk of bare jobs on the same queues;
// then the cold `jtm status` time with that many tasks against the same with 1,000.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Queue } from 'bullmq';

import { addBareJobs } from './lib/bare-bulk.mjs';
import { BIN, jtmEnv, jtmModule, makeTasks, openJtm, poolName, runProcess, tempDir } from './lib/jtm.mjs';
import { coldTimes } from './startup.mjs';
import { median, timeMs } from './lib/stats.mjs';

const POOLS = 50;
const BATCH = 1000;
const SMALL_PREFIX = '{jtmsmall}';

async function addBulkRate(ctx, n) {
  const queues = Array.from(
    { length: POOLS },
    (_, i) => new Queue(`bare-${poolName(i)}`, { connection: ctx.redis }),
  );
  try {
    const ms = await timeMs(() => addBareJobs(queues, n, BATCH));
    return (n / ms) * 1000;
  } finally {
    await Promise.all(queues.map(q => q.close()));
  }
}

async function apiRate(ctx, tasks) {
  const { submitTasks } = await jtmModule('tasks/submit-task.js');
  const ms = await timeMs(async () => {
    for (let start = 0; start < tasks.length; start += BATCH)
      await submitTasks(ctx, tasks.slice(start, start + BATCH));
  });
  return (tasks.length / ms) * 1000;
}

async function cliRate(redisUrl, n) {
  const file = join(tempDir('tasks'), 'tasks.jsonl');
  const lines = [];
  for (let i = 0; i < n; i++)
    lines.push(JSON.stringify({ command: '/bin/true', pool: { name: poolName(i % POOLS) } }));
  writeFileSync(file, `${lines.join('\n')}\n`);
  const res = await runProcess(process.execPath, [BIN, 'submit', '-f', file], { env: jtmEnv(redisUrl) });
  if (res.code !== 0) throw new Error(`jtm submit -f exited ${res.code}: ${res.stderr.trim().slice(0, 300)}`);
  const ids = res.stdout.trim().split('\n').length;
  if (ids !== n) throw new Error(`jtm submit -f printed ${ids} ids for ${n} tasks`);
  return (n / res.ms) * 1000;
}

export async function run({ quick, redisUrl, log }) {
  const total = quick ? 10_000 : 100_000;
  const cliN = quick ? 2_000 : 10_000;
  const reps = quick ? 5 : 9;
  const { ctx, close } = await openJtm(redisUrl);
  try {
    const tasks = await makeTasks(total, POOLS);
    // 1,000 tasks under another prefix: the reference for "status time flat in the number of tasks",
    // timed interleaved with the large set below so that machine noise hits both alike.
    const smallSet = await openJtm(redisUrl, { vars: { JTM_PREFIX: SMALL_PREFIX } });
    await apiRate(smallSet.ctx, tasks.slice(0, 1000));
    await smallSet.close();
    const api = [];
    const bulk = [];
    // Interleaved halves: noise from the other users of the machine hits both sides alike.
    const half = Math.floor(total / 2);
    api.push(await apiRate(ctx, tasks.slice(0, half)));
    bulk.push(await addBulkRate(ctx, half));
    api.push(await apiRate(ctx, tasks.slice(half)));
    bulk.push(await addBulkRate(ctx, total - half));
    const cli = await cliRate(redisUrl, cliN);
    const smallT = [];
    const largeT = [];
    for (let r = 0; r < reps; r++) {
      smallT.push((await coldTimes(redisUrl, 500, 1, ['status'], { JTM_PREFIX: SMALL_PREFIX })).status);
      largeT.push((await coldTimes(redisUrl, Math.floor(total / 2), 1, ['status'])).status);
    }
    const small = { status: median(smallT) };
    const large = { status: median(largeT) };
    const apiR = median(api);
    const bulkR = median(bulk);
    log(
      `  api ${apiR.toFixed(0)}/s, cli ${cli.toFixed(0)}/s, addBulk ${bulkR.toFixed(0)}/s; status ${small.status.toFixed(0)} → ${large.status.toFixed(0)} ms`,
    );
    const k = total.toLocaleString('en-US');
    return [
      {
        id: '4',
        figure: `4. submit ${k} tasks over ${POOLS} pools via API (submitTasks, batches of ${BATCH})`,
        value: apiR,
        unit: '/s',
        baselineName: 'BullMQ addBulk, bare jobs',
        baseline: bulkR,
        ratio: apiR / bulkR,
        target: '≥ 0.5 ×',
        pass: apiR / bulkR >= 0.5,
      },
      {
        id: '4',
        figure: `4. \`jtm submit -f\` ${cliN.toLocaleString('en-US')}-task JSON-lines file (one process, start-up included)`,
        value: cli,
        unit: '/s',
        baselineName: 'BullMQ addBulk, bare jobs',
        baseline: bulkR,
        ratio: cli / bulkR,
        target: '≥ 0.5 ×',
        pass: cli / bulkR >= 0.5,
      },
      {
        id: '4',
        figure: `4. cold \`jtm status\` with ${k} tasks queued`,
        value: large.status,
        unit: ' ms',
        baselineName: 'same with 1,000',
        baseline: small.status,
        ratio: large.status / small.status,
        target: 'flat (≈ 1 ×)',
        pass: large.status / small.status <= 1.2,
      },
    ];
  } finally {
    await close();
  }
}
