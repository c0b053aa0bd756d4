#!/usr/bin/env node
// One-task submits, two builds side by side, with Redis a network hop away (what a site has: Redis on a service
// node, the submitter on a login or compute node):
//   node scripts/bench/submit-latency-ab.mjs [--delay 1] [--n 100] [--reps 4] ROOT_A [ROOT_B ...]
// Each ROOT is a built checkout (npm run build). A private Redis is reached through an order-keeping TCP proxy
// in this process that holds every chunk `delay` ms each way (so a round trip costs 2 × delay more). Interleaved
// per repetition: bare BullMQ `Queue.add` of one job, then for each ROOT `submitTasks` of one task (the API, in
// this process, connected) n times, and a cold `jtm submit -cmd /bin/true` (5 processes). It prints the median
// time of each. The round trips a submit waits for are what the delay multiplies.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { connect, createServer } from 'node:net';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';

import { startLocalRedis } from '../lib/local-redis.mjs';

const { values, positionals } = parseArgs({
  options: {
    delay: { type: 'string', default: '1' },
    n: { type: 'string', default: '100' },
    reps: { type: 'string', default: '4' },
  },
  allowPositionals: true,
});
const delay = Number(values.delay);
const N = Number(values.n);
const reps = Number(values.reps);
const roots = positionals.map(p => resolve(p));
if (roots.length === 0)
  throw new Error('usage: submit-latency-ab.mjs [--delay MS] [--n N] [--reps R] ROOT...');

const redis = await startLocalRedis();
const target = Number(new URL(redis.url).port);
// Chunks are forwarded in order, each `delay` ms after it arrived; Nagle off on both legs (ioredis turns it off
// on its own socket: with it on here, each small reply waited for the client's delayed ACK, 40 ms).
const proxy = createServer(client => {
  const server = connect(target, '127.0.0.1');
  client.setNoDelay(true);
  server.setNoDelay(true);
  const forward = (from, to) =>
    from.on('data', chunk => setTimeout(() => to.writable && to.write(chunk), delay));
  forward(client, server);
  forward(server, client);
  for (const [a, b] of [
    [client, server],
    [server, client],
  ]) {
    a.on('error', () => b.destroy());
    a.on('close', () => b.destroy());
  }
});
await new Promise(r => proxy.listen(0, '127.0.0.1', r));
// --delay 0: Redis directly (a timer of 0 ms still waits for the next turn of the event loop, ≈ 1 ms).
const port = delay > 0 ? proxy.address().port : target;
const url = `redis://127.0.0.1:${port}`;

const { Queue } = createRequire(join(roots[0], 'package.json'))('bullmq');
const bare = new Queue('bare-latency', { connection: { host: '127.0.0.1', port } });
await bare.waitUntilReady();
const builds = [];
for (const root of roots) {
  const J = await import(join(root, 'scripts/bench/lib/jtm.mjs'));
  const { ctx, close } = await J.openJtm(url);
  const { submitTasks } = await J.jtmModule('tasks/submit-task.js');
  builds.push({ root, J, ctx, close, submitTasks, tasks: await J.makeTasks(N * (reps + 1), 1) });
}

const median = a => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
async function timed(f, times) {
  const out = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await f(i);
    out.push(performance.now() - t0);
  }
  return median(out);
}
function cliSubmit(b) {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [b.J.BIN, 'submit', '-cmd', '/bin/true', '-p', 'latency-cli'], {
      env: b.J.jtmEnv(url),
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let err = '';
    child.stderr.on('data', d => (err += d));
    child.on('close', code => (code === 0 ? done() : fail(new Error(err.slice(-300)))));
  });
}

// Warm-up: scripts loaded, code compiled, the shard count stored.
await timed(async () => bare.add('job', {}), 10);
for (const b of builds) await timed(async i => b.submitTasks(b.ctx, [b.tasks[i]]), 10);
const acc = builds.map(() => ({ api: [], cli: [] }));
const base = [];
for (let r = 0; r < reps; r++) {
  base.push(await timed(async () => bare.add('job', {}), N));
  const line = [`rep ${r + 1}: Queue.add ${base.at(-1).toFixed(2)} ms`];
  for (const [k, b] of builds.entries()) {
    const offset = (r + 1) * N;
    acc[k].api.push(await timed(async i => b.submitTasks(b.ctx, [b.tasks[offset + i]]), N));
    acc[k].cli.push(await timed(async () => cliSubmit(b), 5));
    line.push(`${b.root}: API ${acc[k].api.at(-1).toFixed(2)} ms, CLI ${acc[k].cli.at(-1).toFixed(0)} ms`);
  }
  console.log(line.join(' | '));
}
console.log(`medians of ${reps} reps, ${delay} ms each way: Queue.add ${median(base).toFixed(2)} ms`);
for (const [k, b] of builds.entries()) {
  const api = median(acc[k].api);
  console.log(
    `  ${b.root}: API ${api.toFixed(2)} ms (${(api / median(base)).toFixed(2)} × Queue.add), cold CLI ${median(acc[k].cli).toFixed(0)} ms`,
  );
}
await bare.close();
for (const b of builds) await b.close();
proxy.close();
await redis.stop();
process.exit(0);
