// Redis instructions per task lifecycle, benchmark 8's shape: N `/bin/true` through `jtm submit -f` and one
// `jtm worker --slots 4`, against N bare BullMQ jobs (`addBulk` + a no-op Worker, concurrency 4), on a
// redis-server run under callgrind. Instruction counts do not move with the machine's load (benchmark 8's CPU
// figure does): the tool to compare two builds precisely. A first run of 20 of each loads every script (on the
// benchmark's server they are cached after its first run). Each measured run is one callgrind dump, named.
//   valgrind --tool=callgrind --callgrind-out-file=/tmp/cg.%p redis-server --port 7790 --save '' &
//   node scripts/bench/lifecycle-instructions.mjs --port 7790 --n 300 --callgrind-pid <pid>
//   grep -H totals: /tmp/cg.<pid>.*   (÷ N: instructions per task; the dumps named jtm and bare)
import { execFileSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import { BIN, jtmEnv, openJtm, runProcess, startWorkerProcess, tempDir, waitAllFinal } from './lib/jtm.mjs';

const { values } = parseArgs({
  options: {
    port: { type: 'string', default: '6379' },
    n: { type: 'string', default: '300' },
    'callgrind-pid': { type: 'string' },
  },
});
const url = `redis://127.0.0.1:${values.port}`;
const callgrind = args => {
  if (values['callgrind-pid'])
    execFileSync('callgrind_control', [...args, values['callgrind-pid']], { stdio: 'ignore' });
};

async function jtm(n, dump) {
  const { ctx, close } = await openJtm(url);
  await ctx.redis.flushall();
  const pool = 'bench0';
  const dir = tempDir('lifecycle');
  const file = join(dir, 'tasks.jsonl');
  const line = JSON.stringify({ command: '/bin/true', pool: { name: pool } });
  writeFileSync(file, `${Array.from({ length: n }, () => line).join('\n')}\n`);
  const worker = await startWorkerProcess(url, ctx, pool, 4);
  try {
    callgrind(['-z']);
    const res = await runProcess(process.execPath, [BIN, 'submit', '-f', file], { env: jtmEnv(url) });
    if (res.code !== 0) throw new Error(`jtm submit -f exited ${res.code}: ${res.stderr.slice(0, 300)}`);
    await waitAllFinal(ctx, 1_200_000);
    if (dump) callgrind(['-d', dump]);
  } finally {
    await worker.stop();
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function bare(n, dump) {
  const connection = new Redis(url, { maxRetriesPerRequest: null });
  await connection.flushall();
  const queue = new Queue('bare', { connection });
  let done = 0;
  callgrind(['-z']);
  await queue.addBulk(
    Array.from({ length: n }, (_, i) => ({
      name: 'job',
      data: { i },
      opts: { removeOnComplete: 100, removeOnFail: 1000 },
    })),
  );
  const worker = new Worker('bare', async () => {}, { connection, concurrency: 4 });
  await new Promise(resolve => worker.on('completed', () => ++done === n && resolve()));
  if (dump) callgrind(['-d', dump]);
  await worker.close();
  await queue.close();
  await connection.quit();
}

await jtm(20);
await bare(20);
await jtm(Number(values.n), 'jtm');
await bare(Number(values.n), 'bare');
console.log(`done: callgrind dumps 'jtm' and 'bare', ${values.n} tasks each`);
