// Benchmark 1: N `/bin/true` tasks through one worker with 4 slots, submitted in bulk, until all final,
// against the same N runs of /bin/true 4 at a time by a Node spawn loop, `xargs -P4` and GNU `parallel -j4`.
// Also measures Redis memory per finished task (the records left behind by a real run).
import { spawn } from 'node:child_process';

import {
  assertBuilt,
  jtmModule,
  makeTasks,
  openJtm,
  runProcess,
  startWorkerProcess,
  waitAllFinal,
} from './lib/jtm.mjs';
import { memoryRow, usedMemory } from './lib/redis-memory.mjs';
import { median, timeMs } from './lib/stats.mjs';

const SLOTS = 4;

/** /bin/true `n` times, `width` at a time, from Node: the floor for a Node process that forks. */
function nodeSpawnLoop(n, width) {
  return new Promise((resolve, reject) => {
    let started = 0;
    let done = 0;
    const next = () => {
      if (started >= n) return;
      started++;
      const c = spawn('/bin/true', [], { stdio: 'ignore' });
      c.on('error', reject);
      c.on('exit', () => {
        if (++done === n) resolve();
        else next();
      });
    };
    for (let i = 0; i < Math.min(width, n); i++) next();
  });
}

async function jtmRun(redisUrl, n) {
  const { ctx, close } = await openJtm(redisUrl);
  const { submitTasks } = await jtmModule('tasks/submit-task.js');
  await ctx.redis.flushall();
  const tasks = await makeTasks(n, 1);
  const worker = await startWorkerProcess(redisUrl, ctx, tasks[0].pool, SLOTS);
  const memBefore = await usedMemory(ctx.redis);
  try {
    const ms = await timeMs(async () => {
      await submitTasks(ctx, tasks);
      await waitAllFinal(ctx, 600_000);
    });
    const failed = await countNotSuccess(ctx, n);
    const memAfter = await usedMemory(ctx.redis);
    const keyBytes = await taskKeyBytes(ctx, 1);
    return { ms, failed, bytesPerTask: (memAfter - memBefore) / n, keyBytes };
  } finally {
    await worker.stop();
    await close();
  }
}

/** Sizes of the keys one finished task leaves (record with its history, samples, output). */
async function taskKeyBytes(ctx, id) {
  const keys = [ctx.keys.task(id), ctx.keys.taskResources(id), ctx.keys.taskOutput(id)];
  let total = 0;
  for (const k of keys) total += Number((await ctx.redis.memory('USAGE', k)) ?? 0);
  return total;
}

async function countNotSuccess(ctx, n) {
  const p = ctx.redis.pipeline();
  for (let id = 1; id <= n; id++) p.hget(ctx.keys.task(id), 'status');
  const res = await p.exec();
  return res.filter(([, v]) => v !== '4').length;
}

export async function run({ quick, redisUrl, log }) {
  assertBuilt();
  const n = quick ? 300 : 5000;
  const reps = quick ? 2 : 3;
  const seq = Array.from({ length: n }, (_, i) => String(i + 1)).join('\n') + '\n';
  const runs = { jtm: [], node: [], xargs: [], parallel: [] };
  let last;
  for (let r = 0; r < reps; r++) {
    // Interleaved, so that a burst of load from the other users of the machine hits all of them alike.
    last = await jtmRun(redisUrl, n);
    if (last.failed > 0) throw new Error(`${last.failed} of ${n} tasks did not end in success`);
    runs.jtm.push(last.ms);
    runs.node.push(await timeMs(() => nodeSpawnLoop(n, SLOTS)));
    runs.xargs.push((await runProcess('xargs', ['-P4', '-n1', '/bin/true'], { input: seq })).ms);
    runs.parallel.push((await runProcess('parallel', ['-j4', '/bin/true'], { input: seq })).ms);
    log(
      `  run ${r + 1}/${reps}: jtm ${runs.jtm.at(-1).toFixed(0)} ms, node ${runs.node.at(-1).toFixed(0)} ms, ` +
        `xargs ${runs.xargs.at(-1).toFixed(0)} ms, parallel ${runs.parallel.at(-1).toFixed(0)} ms`,
    );
  }
  const rate = ms => (n / ms) * 1000;
  const jtm = rate(median(runs.jtm));
  const node = rate(median(runs.node));
  const xargs = rate(median(runs.xargs));
  const par = rate(median(runs.parallel));
  const label = `1. ${n.toLocaleString('en-US')} × /bin/true, 1 worker × 4 slots`;
  return [
    {
      id: '1',
      figure: `${label}: tasks/s`,
      value: jtm,
      unit: '/s',
      baselineName: 'Node spawn loop ×4',
      baseline: node,
      ratio: jtm / node,
      target: '≥ 0.8 ×',
      pass: jtm / node >= 0.8,
    },
    {
      id: '1',
      figure: `${label}: tasks/s`,
      value: jtm,
      unit: '/s',
      baselineName: 'xargs -P4',
      baseline: xargs,
      ratio: jtm / xargs,
      target: '—',
    },
    {
      id: '1',
      figure: `${label}: tasks/s`,
      value: jtm,
      unit: '/s',
      baselineName: 'GNU parallel -j4',
      baseline: par,
      ratio: jtm / par,
      target: '≥ 2 ×',
      pass: jtm / par >= 2,
    },
    memoryRow(
      '4',
      '4. Redis memory per finished task (whole run: record, output, BullMQ job)',
      last.bytesPerTask,
      {
        note: `MEMORY USAGE of one task's keys: ${last.keyBytes} B`,
      },
    ),
  ];
}
