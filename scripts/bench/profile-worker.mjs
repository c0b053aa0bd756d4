// Profiling aid for benchmark 1 (not a benchmark): N `/bin/true` tasks through one `jtm worker --slots 4`,
// timed, optionally with the worker (and its pty host) under `node --cpu-prof`, and with a same-run Node spawn
// loop as the yardstick. Usage: node scripts/bench/profile-worker.mjs [N] [--cpu-prof=DIR] [--procfs]
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

import { startLocalRedis } from '../lib/local-redis.mjs';
import { jtmModule, makeTasks, openJtm, startWorkerProcess, waitAllFinal } from './lib/jtm.mjs';
import { timeMs } from './lib/stats.mjs';

const n = Number(process.argv.find(a => /^\d+$/.test(a)) ?? 1000);
const profDir = process.argv.find(a => a.startsWith('--cpu-prof='))?.slice('--cpu-prof='.length);
const procfs = process.argv.includes('--procfs');

function spawnLoop(count, width) {
  return new Promise(resolve => {
    let started = 0;
    let done = 0;
    const next = () => {
      if (started >= count) return;
      started++;
      spawn('/bin/true', [], { stdio: 'ignore' }).on('exit', () => (++done === count ? resolve() : next()));
    };
    for (let i = 0; i < width; i++) next();
  });
}

const redis = await startLocalRedis();
try {
  const { ctx, close } = await openJtm(redis.url);
  const { submitTasks } = await jtmModule('tasks/submit-task.js');
  const tasks = await makeTasks(n, 1);
  const extra = {};
  if (procfs) extra.JTM_ACCOUNTING = 'procfs';
  // The pty host is forked with the worker's execArgv: it is profiled too.
  const nodeArgs = profDir ? ['--cpu-prof', `--cpu-prof-dir=${profDir}`] : [];
  const worker = await startWorkerProcess(redis.url, ctx, tasks[0].pool, 4, extra, nodeArgs);
  await ctx.redis.config('RESETSTAT');
  const cpu0 = process.cpuUsage();
  const t0 = Date.now();
  const ms = await timeMs(async () => {
    await submitTasks(ctx, tasks);
    await waitAllFinal(ctx, 600_000);
  });
  // CPU (µs per task) of the worker, its pty host (own) and the tasks the host reaped (bash, the command).
  const cpu = pid => {
    const f = readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ');
    return { own: (Number(f[11]) + Number(f[12])) * 1e4, reaped: (Number(f[13]) + Number(f[14])) * 1e4 };
  };
  const hostPid = Number(
    readFileSync(`/proc/${worker.child.pid}/task/${worker.child.pid}/children`, 'latin1')
      .trim()
      .split(' ')[0],
  );
  const w = cpu(worker.child.pid);
  const h = cpu(hostPid);
  const redisInfo = await ctx.redis.info('cpu');
  const redisCpu = ['used_cpu_sys', 'used_cpu_user'].reduce(
    (t, k) => t + Number(new RegExp(`${k}:([\\d.]+)`).exec(redisInfo)[1]),
    0,
  );
  const perTask = {
    worker: w.own / n,
    ptyHost: h.own / n,
    tasks: h.reaped / n,
    redis: (redisCpu * 1e6) / n,
  };
  // When the tasks started and ended, from their records: the first start shows the wait before the first task.
  const p = ctx.redis.pipeline();
  for (let id = 1; id <= n; id++) p.hmget(ctx.keys.task(id), 'started_at', 'ended_at');
  const times = (await p.exec()).map(([, v]) => v.map(Number));
  const firstStart = Math.min(...times.map(t => t[0])) - t0;
  const lastEnd = Math.max(...times.map(t => t[1])) - t0;
  const stats = {};
  for (const m of (await ctx.redis.info('commandstats')).matchAll(
    /cmdstat_(\w+(?:\|\w+)?):calls=(\d+),usec=(\d+)/g,
  ))
    stats[m[1]] = `${(Number(m[2]) / n).toFixed(2)} calls, ${(Number(m[3]) / n).toFixed(0)} µs`;
  await worker.stop();
  const before = cpu(process.pid);
  const node = await timeMs(() => spawnLoop(n, 4));
  const after = cpu(process.pid);
  perTask.spawnLoop = (after.own - before.own) / n;
  perTask.spawnLoopChildren = (after.reaped - before.reaped) / n;
  const rec = await ctx.redis.hgetall(ctx.keys.task(1));
  console.log(
    JSON.stringify({
      n,
      firstStartMs: firstStart,
      lastEndMs: lastEnd,
      wallMs: ms,
      jtmPerS: (n / ms) * 1000,
      nodePerS: (n / node) * 1000,
      ratio: node / ms,
      accounting: rec.accounting,
      cpuUsPerTask: perTask,
      harnessCpuUs: process.cpuUsage(cpu0),
      redisPerTask: process.argv.includes('--stats') ? stats : undefined,
    }),
  );
  await close();
} finally {
  await redis.stop();
}
