#!/usr/bin/env node
// Bulk submit, two builds side by side (benchmark 4's figures, for comparing a change):
//   node scripts/bench/submit-ab.mjs [--reps 4] [--n 10000] ROOT_A [ROOT_B ...]
// Each ROOT is a built checkout (npm run build). On one private Redis, interleaved per repetition: BullMQ
// addBulk of bare jobs over 50 queues (before and after), then for each ROOT the API (submitTasks in
// batches of 1,000, in this process) and a cold `jtm submit -f` of an n-line JSON-lines file. It prints
// each one's rate and ratio to addBulk, and the CPU it cost: this process's (or the submit process's, from
// /usr/bin/time) and Redis's (INFO used_cpu delta). On a shared, loaded machine the wall-clock ratios swing
// by 2 × from run to run; the CPU figures move far less and are the ones to compare builds by.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

import { startLocalRedis } from '../lib/local-redis.mjs';
import { addBareJobs } from './lib/bare-bulk.mjs';

const { values, positionals } = parseArgs({
  options: { reps: { type: 'string', default: '4' }, n: { type: 'string', default: '10000' } },
  allowPositionals: true,
});
const reps = Number(values.reps);
const N = Number(values.n);
const roots = positionals.map(p => resolve(p));
if (roots.length === 0) throw new Error('usage: submit-ab.mjs [--reps R] [--n N] ROOT_A [ROOT_B ...]');
const POOLS = 50;
const BATCH = 1000;

const redis = await startLocalRedis();
const { Queue } = createRequire(join(roots[0], 'package.json'))('bullmq');
const builds = [];
for (const root of roots) {
  const J = await import(join(root, 'scripts/bench/lib/jtm.mjs'));
  const { ctx, close } = await J.openJtm(redis.url);
  const { submitTasks } = await J.jtmModule('tasks/submit-task.js');
  builds.push({ root, J, ctx, close, submitTasks, tasks: await J.makeTasks(N, POOLS) });
}
const probe = builds[0].ctx.redis;
const dir = mkdtempSync(join(tmpdir(), 'jtm-submit-ab-'));
const file = join(dir, 'tasks.jsonl');
writeFileSync(
  file,
  `${Array.from({ length: N }, (_, i) => JSON.stringify({ command: '/bin/true', pool: { name: `bench${i % POOLS}` } })).join('\n')}\n`,
);

async function redisCpuMs() {
  const info = await probe.info('cpu');
  const field = k => Number(info.match(new RegExp(`${k}:([0-9.]+)`))[1]);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
}

/** Times `f` in this process: rate, this process's CPU and Redis's. */
async function inProcess(f) {
  const r0 = await redisCpuMs();
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return { rate: (N / ms) * 1000, cpu: (c.user + c.system) / 1000, redis: (await redisCpuMs()) - r0 };
}

async function addBulk() {
  const queues = Array.from({ length: POOLS }, (_, i) => new Queue(`bare-bench${i}`, { connection: probe }));
  const r = await inProcess(() => addBareJobs(queues, N, BATCH));
  await Promise.all(queues.map(q => q.close()));
  return r;
}

function cli(b) {
  return new Promise((done, fail) => {
    void redisCpuMs().then(r0 => {
      const t0 = performance.now();
      const child = spawn(
        '/usr/bin/time',
        ['-f', 'CPU %U %S', process.execPath, b.J.BIN, 'submit', '-f', file],
        {
          env: b.J.jtmEnv(redis.url),
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      let err = '';
      child.stdout.on('data', d => (out += d));
      child.stderr.on('data', d => (err += d));
      child.on('close', async code => {
        const ms = performance.now() - t0;
        const m = err.match(/CPU ([0-9.]+) ([0-9.]+)/);
        if (code !== 0 || !m || out.trim().split('\n').length !== N) return fail(new Error(err.slice(-300)));
        const redisMs = (await redisCpuMs()) - r0;
        done({ rate: (N / ms) * 1000, cpu: (Number(m[1]) + Number(m[2])) * 1000, redis: redisMs });
      });
    }, fail);
  });
}

const fmt = x => `${x.rate.toFixed(0)}/s, CPU ${x.cpu.toFixed(0)} ms + Redis ${x.redis.toFixed(0)} ms`;
const median = a => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
// Warm-up: scripts loaded, the API path JIT-compiled, as in benchmark 4.
await addBulk();
for (const b of builds) await b.submitTasks(b.ctx, b.tasks.slice(0, BATCH));
const acc = builds.map(() => ({ api: [], cli: [], apiCpu: [], cliCpu: [], apiRedis: [], cliRedis: [] }));
const base = { cpu: [], redis: [] };
for (let r = 0; r < reps; r++) {
  const before = await addBulk();
  const runs = [];
  for (const b of builds) {
    const api = await inProcess(async () => {
      for (let s = 0; s < N; s += BATCH) await b.submitTasks(b.ctx, b.tasks.slice(s, s + BATCH));
    });
    runs.push({ api, cli: await cli(b) });
  }
  const after = await addBulk();
  const bulkRate = (before.rate + after.rate) / 2;
  base.cpu.push(before.cpu, after.cpu);
  base.redis.push(before.redis, after.redis);
  console.log(`rep ${r + 1}: addBulk ${fmt(before)} | ${fmt(after)}`);
  runs.forEach(({ api, cli: c }, i) => {
    const a = acc[i];
    a.api.push(api.rate / bulkRate);
    a.cli.push(c.rate / bulkRate);
    a.apiCpu.push(api.cpu);
    a.cliCpu.push(c.cpu);
    a.apiRedis.push(api.redis);
    a.cliRedis.push(c.redis);
    console.log(
      `  ${builds[i].root}: API ${fmt(api)} (${(api.rate / bulkRate).toFixed(3)} ×); CLI ${fmt(c)} (${(c.rate / bulkRate).toFixed(3)} ×)`,
    );
  });
}
console.log(
  `medians, ${N} tasks, ${reps} reps: addBulk CPU ${median(base.cpu).toFixed(0)} ms + Redis ${median(base.redis).toFixed(0)} ms`,
);
acc.forEach((a, i) =>
  console.log(
    `  ${builds[i].root}: API ${median(a.api).toFixed(3)} ×, CPU ${median(a.apiCpu).toFixed(0)} + Redis ${median(a.apiRedis).toFixed(0)} ms; ` +
      `CLI ${median(a.cli).toFixed(3)} ×, CPU ${median(a.cliCpu).toFixed(0)} + Redis ${median(a.cliRedis).toFixed(0)} ms`,
  ),
);
for (const b of builds) await b.close();
await redis.stop();
rmSync(dir, { recursive: true, force: true });
