// Benchmark 8: the Redis cost of one task's lifecycle (issue 15, items 1 and 5).
// - Redis CPU per task: INFO `used_cpu_user + used_cpu_sys` delta ÷ N on the bench's private redis-server,
//   N `/bin/true` tasks submitted with `jtm submit -f` and run by one `jtm worker --slots 4`, against the same
//   N bare BullMQ jobs (`addBulk` + a no-op Worker, concurrency 4) in the same run, interleaved.
// - `INFO commandstats` per task (calls and µs per command) of the median JTM run, and per script: commandstats
//   folds every script into EVALSHA, so one more run of each side with SLOWLOG at threshold 0 (every command
//   logged with its µs and its SHA) splits EVALSHA by script, named from src/redis/scripts.ts and BullMQ's.
//   That run is kept apart from the CPU figure because the slow log costs Redis time itself.
// - Redis memory per finished task over the whole run: `used_memory` delta ÷ N after the JTM run, and per key
//   family (digits of a key name folded to `#`) from MEMORY USAGE of a sample of each family's keys.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import {
  assertBuilt,
  BIN,
  jtmEnv,
  jtmModule,
  openJtm,
  poolName,
  runProcess,
  startWorkerProcess,
  tempDir,
  waitAllFinal,
} from './lib/jtm.mjs';
import { describeMachine } from './lib/machine.mjs';
import { memoryAfterReset, memoryRow, usedMemory } from './lib/redis-memory.mjs';
import { fmt, median } from './lib/stats.mjs';

const SLOTS = 4;
const SAMPLE_PER_FAMILY = 100;
// Same retention as JTM's jobs (src/tasks/job-data.ts), so the baseline trims its completed set alike.
const BARE_JOB_OPTS = { removeOnComplete: 100, removeOnFail: 1000 };

const sha1 = s => createHash('sha1').update(s).digest('hex');

/** SHA → script name, for JTM's scripts (every string export of scripts.ts) and BullMQ's. */
async function scriptNames() {
  const names = new Map();
  const jtm = await jtmModule('redis/scripts.js');
  for (const [name, value] of Object.entries(jtm))
    if (typeof value === 'string') names.set(sha1(value), `jtm ${name}`);
  // BullMQ's ESM build imports without extensions (not loadable by Node); its CommonJS build holds the same text.
  const bull = createRequire(import.meta.url)('bullmq/dist/cjs/scripts/index.js');
  for (const s of Object.values(bull))
    if (s && typeof s.content === 'string') names.set(sha1(s.content), `bullmq ${s.name}`);
  return names;
}

async function info(redis, section) {
  const text = await redis.info(section);
  const out = {};
  for (const line of text.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

async function cpuSeconds(redis) {
  const i = await info(redis, 'cpu');
  return Number(i.used_cpu_user) + Number(i.used_cpu_sys);
}

// INFO memory fields that split a used_memory delta: what is not keys is mostly fixed per run, not per task.
const MEMORY_PARTS = [
  'used_memory_dataset',
  'used_memory_scripts',
  'mem_clients_normal',
  'used_memory_overhead',
];

async function memoryParts(redis) {
  const i = await info(redis, 'memory');
  return Object.fromEntries(MEMORY_PARTS.map(k => [k, Number(i[k] ?? NaN)]));
}

/** `cmdstat_evalsha:calls=4,usec=268,...` → Map(command → {calls, usec}). */
async function commandStats(redis) {
  const stats = new Map();
  for (const [k, v] of Object.entries(await info(redis, 'commandstats'))) {
    if (!k.startsWith('cmdstat_')) continue;
    const f = Object.fromEntries(v.split(',').map(kv => kv.split('=')));
    stats.set(k.slice('cmdstat_'.length), { calls: Number(f.calls), usec: Number(f.usec) });
  }
  return stats;
}

/** Every logged command since the last SLOWLOG RESET, folded by command (EVALSHA split by script). */
async function slowlogByScript(redis, names) {
  const entries = await redis.slowlog('GET', -1);
  const by = new Map();
  for (const [, , usec, args] of entries) {
    const cmd = String(args[0]).toLowerCase();
    let key = cmd;
    if (cmd === 'evalsha' || cmd === 'evalsha_ro') {
      const sha = String(args[1]).toLowerCase();
      key = `evalsha ${names.get(sha) ?? sha.slice(0, 12)}`;
    } else if (cmd === 'eval') key = 'eval (inline script)';
    const e = by.get(key) ?? { calls: 0, usec: 0 };
    e.calls++;
    e.usec += Number(usec);
    by.set(key, e);
  }
  return { by, entries: entries.length };
}

async function enableSlowlog(redis, n) {
  await redis.config('SET', 'slowlog-log-slower-than', '0');
  await redis.config('SET', 'slowlog-max-len', String(Math.max(128, n * 150)));
  await redis.slowlog('RESET');
}

async function disableSlowlog(redis) {
  await redis.config('SET', 'slowlog-log-slower-than', '-1');
  await redis.slowlog('RESET');
}

/** JSON-lines task file of `n` `/bin/true` tasks for one pool, as a user would pass to `jtm submit -f`. */
function taskFile(n, pool) {
  const file = join(tempDir('cost'), 'tasks.jsonl');
  const line = JSON.stringify({ command: '/bin/true', pool: { name: pool } });
  writeFileSync(file, `${Array.from({ length: n }, () => line).join('\n')}\n`);
  return file;
}

/** Waits until BullMQ has no job of the pool waiting or active (its completion may trail the record's end). */
async function waitQueueIdle(ctx, pool, timeoutMs) {
  const base = `${ctx.keys.queuePrefix}:${ctx.keys.poolQueue(pool)}`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [w, a] = await Promise.all([ctx.redis.llen(`${base}:wait`), ctx.redis.llen(`${base}:active`)]);
    if (w + a === 0) return;
    if (Date.now() > deadline) throw new Error(`BullMQ queue ${pool} still has ${w + a} jobs`);
    await new Promise(r => setTimeout(r, 20));
  }
}

/** One JTM lifecycle run on an empty Redis: CPU, commandstats and memory deltas over submit → all final. */
async function jtmRun(redisUrl, n, { slowlog, names, memory }) {
  const { ctx, close } = await openJtm(redisUrl);
  const pool = poolName(0);
  await ctx.redis.flushall();
  const file = taskFile(n, pool);
  const worker = await startWorkerProcess(redisUrl, ctx, pool, SLOTS);
  try {
    if (slowlog) await enableSlowlog(ctx.redis, n);
    // The reset frees the latency histograms of the commands run so far (redis-memory.mjs); the run's own are
    // freed by the reset after it, before its memory is read.
    await ctx.redis.config('RESETSTAT');
    const mem0 = await usedMemory(ctx.redis);
    const parts0 = memory ? await memoryParts(ctx.redis) : undefined;
    const cpu0 = await cpuSeconds(ctx.redis);
    const res = await runProcess(process.execPath, [BIN, 'submit', '-f', file], { env: jtmEnv(redisUrl) });
    if (res.code !== 0) throw new Error(`jtm submit -f exited ${res.code}: ${res.stderr.slice(0, 300)}`);
    await waitAllFinal(ctx, 600_000);
    await waitQueueIdle(ctx, pool, 60_000);
    const cpu1 = await cpuSeconds(ctx.redis);
    const stats = await commandStats(ctx.redis);
    const out = { cpuUsPerTask: ((cpu1 - cpu0) * 1e6) / n, stats };
    if (slowlog) {
      out.scripts = await slowlogByScript(ctx.redis, names);
      await disableSlowlog(ctx.redis);
    }
    if (memory) {
      const end = await memoryAfterReset(ctx.redis);
      out.bytesPerTask = (end.bytes - mem0) / n;
      out.histogramBytes = end.histogramBytes;
      const parts1 = await memoryParts(ctx.redis);
      out.parts = MEMORY_PARTS.map(k => ({ name: k, perTask: (parts1[k] - parts0[k]) / n }));
      out.families = await keyFamilies(ctx.redis);
    }
    const failed = await countNotSuccess(ctx, n);
    if (failed > 0) throw new Error(`${failed} of ${n} tasks did not end in success`);
    return out;
  } finally {
    await worker.stop();
    await close();
    rmSync(dirname(file), { recursive: true, force: true });
  }
}

async function countNotSuccess(ctx, n) {
  const p = ctx.redis.pipeline();
  for (let id = 1; id <= n; id++) p.hget(ctx.keys.task(id), 'status');
  return (await p.exec()).filter(([, v]) => v !== '4').length;
}

/**
 * The same N jobs through bare BullMQ: `addBulk`, a Worker with concurrency 4, in this process. Its processor
 * does nothing, or with `spawnTask` runs `/bin/true` (Redis then shares the cores with process starts as it
 * does beside a JTM worker: the same commands cost it more CPU, see the section's text).
 */
async function bareRun(redisUrl, n, { slowlog, names, spawnTask = false }) {
  const admin = new Redis(redisUrl);
  await admin.flushall();
  const connection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const queue = new Queue('bare', { connection });
  let done = 0;
  let allDone;
  const finished = new Promise(r => (allDone = r));
  const workerConnection = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const processor = spawnTask
    ? () => new Promise((resolve, reject) => spawn('/bin/true').on('exit', resolve).on('error', reject))
    : async () => {};
  const worker = new Worker('bare', processor, {
    connection: workerConnection,
    concurrency: SLOTS,
  });
  worker.on('completed', () => {
    if (++done === n) allDone();
  });
  try {
    await worker.waitUntilReady();
    await queue.waitUntilReady();
    if (slowlog) await enableSlowlog(admin, n);
    await admin.config('RESETSTAT');
    const cpu0 = await cpuSeconds(admin);
    const jobs = Array.from({ length: n }, (_, i) => ({
      name: 'task',
      data: { id: i + 1, command: '/bin/true' },
      opts: BARE_JOB_OPTS,
    }));
    await queue.addBulk(jobs);
    await finished;
    const cpu1 = await cpuSeconds(admin);
    const out = { cpuUsPerTask: ((cpu1 - cpu0) * 1e6) / n, stats: await commandStats(admin) };
    if (slowlog) {
      out.scripts = await slowlogByScript(admin, names);
      await disableSlowlog(admin);
    }
    return out;
  } finally {
    await worker.close();
    await queue.close();
    // BullMQ does not close connections it was given.
    await Promise.all([workerConnection.quit(), connection.quit(), admin.quit()]);
  }
}

/** Key families (digit runs folded to `#`): key count and bytes from MEMORY USAGE of a sample of each. */
async function keyFamilies(redis) {
  const families = new Map();
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const k of keys) {
      const fam = k.replace(/\d+/g, '#');
      const f = families.get(fam) ?? { keys: 0, sample: [] };
      f.keys++;
      if (f.sample.length < SAMPLE_PER_FAMILY) f.sample.push(k);
      families.set(fam, f);
    }
  } while (cursor !== '0');
  const out = [];
  for (const [family, f] of families) {
    const p = redis.pipeline();
    for (const k of f.sample) p.memory('USAGE', k, 'SAMPLES', '0');
    const sizes = (await p.exec()).map(([, v]) => Number(v ?? 0));
    const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    out.push({ family, keys: f.keys, sampled: sizes.length, bytes: mean * f.keys });
  }
  return out.sort((a, b) => b.bytes - a.bytes);
}

function perTaskTable(stats, n, { top = 15 } = {}) {
  const rows = [...stats].map(([name, s]) => ({ name, ...s })).sort((a, b) => b.usec - a.usec);
  const total = rows.reduce((a, r) => a + r.usec, 0);
  const lines = [
    '| command | calls per task | µs per task | µs per call | share of command time |',
    '|---|---|---|---|---|',
  ];
  for (const r of rows.slice(0, top))
    lines.push(
      `| \`${r.name}\` | ${fmt(r.calls / n)} | ${fmt(r.usec / n)} | ${fmt(r.usec / r.calls)} | ${fmt((100 * r.usec) / total)} % |`,
    );
  const rest = rows.slice(top);
  if (rest.length > 0) {
    const usec = rest.reduce((a, r) => a + r.usec, 0);
    const calls = rest.reduce((a, r) => a + r.calls, 0);
    lines.push(
      `| ${rest.length} others | ${fmt(calls / n)} | ${fmt(usec / n)} | — | ${fmt((100 * usec) / total)} % |`,
    );
  }
  lines.push(
    `| **all commands** (commands run by a script count twice: in its evalsha line and on their own) | ${fmt(rows.reduce((a, r) => a + r.calls, 0) / n)} | ${fmt(total / n)} | — | 100 % |`,
  );
  return lines.join('\n');
}

function familyTable(families, n, bytesPerTask) {
  const lines = [
    '| key family (digits → #) | keys | sampled | bytes per task (MEMORY USAGE) |',
    '|---|---|---|---|',
  ];
  const sum = families.reduce((a, f) => a + f.bytes, 0);
  for (const f of families.slice(0, 15))
    lines.push(`| \`${f.family}\` | ${fmt(f.keys)} | ${f.sampled} | ${fmt(f.bytes / n)} B |`);
  if (families.length > 15) {
    const rest = families.slice(15);
    lines.push(
      `| ${rest.length} other families | ${fmt(rest.reduce((a, f) => a + f.keys, 0))} | — | ${fmt(rest.reduce((a, f) => a + f.bytes, 0) / n)} B |`,
    );
  }
  lines.push(`| **sum of keys** | — | — | ${fmt(sum / n)} B |`);
  lines.push(
    `| used_memory delta − keys (the keyspace's tables and expiry entries, buffers, script cache) | — | — | ${fmt(bytesPerTask - sum / n)} B |`,
  );
  return lines.join('\n');
}

export async function run({ quick, redisUrl, log }) {
  assertBuilt();
  const n = quick ? 500 : 5000;
  const reps = quick ? 2 : 3;
  const nScripts = Math.min(n, quick ? 300 : 1000);
  const names = await scriptNames();
  const jtm = [];
  const bare = [];
  const bareSpawn = [];
  let memory;
  let firstMemory;
  for (let r = 0; r < reps; r++) {
    // Interleaved, so that load from the machine's other users hits both sides alike. Memory is taken from
    // the last JTM run: the first run on a fresh server leaves a one-off allocation that later runs do not
    // add to (shown apart, with the first run's figure).
    const j = await jtmRun(redisUrl, n, { names, memory: r === 0 || r === reps - 1 });
    if (r === 0) firstMemory = j;
    if (r === reps - 1) memory = j;
    jtm.push(j);
    bare.push(await bareRun(redisUrl, n, { names }));
    bareSpawn.push(await bareRun(redisUrl, n, { names, spawnTask: true }));
    log(
      `  run ${r + 1}/${reps}: Redis CPU per task, jtm ${fmt(jtm.at(-1).cpuUsPerTask)} µs, ` +
        `bare BullMQ ${fmt(bare.at(-1).cpuUsPerTask)} µs, running /bin/true ${fmt(bareSpawn.at(-1).cpuUsPerTask)} µs`,
    );
  }
  const jtmCpu = median(jtm.map(x => x.cpuUsPerTask));
  const bareCpu = median(bare.map(x => x.cpuUsPerTask));
  const bareSpawnCpu = median(bareSpawn.map(x => x.cpuUsPerTask));
  const mid = (runs, v) => runs.find(x => x.cpuUsPerTask === v);
  log(`  slow-log runs (${nScripts} tasks each) for the per-script split`);
  const jtmScripts = await jtmRun(redisUrl, nScripts, { slowlog: true, names });
  const bareScripts = await bareRun(redisUrl, nScripts, { slowlog: true, names });

  const machine = describeMachine(new URL('../..', import.meta.url).pathname);
  const nf = n.toLocaleString('en-US');
  const ratio = jtmCpu / bareCpu;
  const section = `## 8. Redis cost per task

Written by \`npm run bench -- ${quick ? '--quick ' : ''}--only=8\` (scripts/bench/redis-cost.mjs).

- **Mode**: ${quick ? `quick (N = ${nf}, ${reps} interleaved runs of each side; full mode is N = 5,000, 3 runs)` : `full (N = ${nf}, ${reps} interleaved runs of each side)`}
- **Date**: ${machine.date}
- **Commit**: ${machine.commit}
- **Machine**: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB memory, load average ${machine.load} at the end
- **Software**: Node ${machine.node}, redis-server ${machine.redis} (private instance, no persistence)

${quick ? 'Quick mode only: the machine is shared with other jobs (see the load average), so absolute µs are inflated (a command is timed in wall time, and Redis is descheduled mid-command under load); read the ratios, and the relative weight of each command.\n\n' : ''}How: N \`/bin/true\` tasks in a JSON-lines file, \`jtm submit -f\`, one \`jtm worker --slots 4\`, until every
record is final and the BullMQ queue is idle; against the same N jobs through bare BullMQ (\`addBulk\`, a no-op
\`Worker\` with concurrency 4, the same \`removeOnComplete\`/\`removeOnFail\` as JTM's jobs), on the same
private redis-server, flushed before each run. Redis CPU is INFO \`used_cpu_user + used_cpu_sys\` delta ÷ N
(the median of the runs); it includes everything Redis did meanwhile (heartbeats, BullMQ's timers, the bench's
own polling, a few calls per 20 ms). Commandstats come from the run with the median CPU (\`CONFIG RESETSTAT\`
first). Commandstats fold every script into \`evalsha\`, so a separate run of each side (${nScripts.toLocaleString('en-US')}
tasks, \`slowlog-log-slower-than 0\`) splits it per script, named by the SHA-1 of the scripts in
src/redis/scripts.ts and BullMQ's; that run is not used for the CPU figure (the slow log costs time itself).

| figure | JTM | bare BullMQ (same run) | ratio | target | |
|---|---|---|---|---|---|
| Redis CPU per task lifecycle (INFO used_cpu delta ÷ ${nf}) | ${fmt(jtmCpu)} µs | ${fmt(bareCpu)} µs | ${fmt(ratio)} × | ≤ 1.5 × | ${ratio <= 1.5 ? 'met' : '**missed**'} |
| Redis CPU per task, against bare BullMQ whose processor runs \`/bin/true\` (the same Redis commands as the no-op baseline) | ${fmt(jtmCpu)} µs | ${fmt(bareSpawnCpu)} µs | ${fmt(jtmCpu / bareSpawnCpu)} × | — | |
| Redis command time per task (commandstats usec ÷ N, script-internal commands counted twice) | ${fmt(totalUsec(mid(jtm, jtmCpu).stats) / n)} µs | ${fmt(totalUsec(mid(bare, bareCpu).stats) / n)} µs | ${fmt(totalUsec(mid(jtm, jtmCpu).stats) / totalUsec(mid(bare, bareCpu).stats))} × | — | |
| Redis commands per task (top-level and script-internal) | ${fmt(totalCalls(mid(jtm, jtmCpu).stats) / n)} | ${fmt(totalCalls(mid(bare, bareCpu).stats) / n)} | ${fmt(totalCalls(mid(jtm, jtmCpu).stats) / totalCalls(mid(bare, bareCpu).stats))} × | — | |
| Redis memory per finished task, whole run (used_memory delta ÷ ${nf}) | ${fmt(memory.bytesPerTask)} B | 1 KB: 1,024 B | ${fmt(memory.bytesPerTask / 1024)} × | ≤ 1 KB | ${memory.bytesPerTask <= 1024 ? 'met' : '**missed**'} |

Runs, Redis CPU per task: JTM ${jtm.map(x => `${fmt(x.cpuUsPerTask)} µs`).join(', ')}; bare BullMQ ${bare.map(x => `${fmt(x.cpuUsPerTask)} µs`).join(', ')}; bare BullMQ running \`/bin/true\` ${bareSpawn.map(x => `${fmt(x.cpuUsPerTask)} µs`).join(', ')}.

The second baseline runs exactly the Redis commands of the first (its processor's \`spawn\` touches no Redis), yet
costs Redis more CPU per task: with process starts beside it on the same cores, Redis is woken once per
command instead of serving a batch per wake-up, and runs with colder caches after each switch. Part of JTM's
ratio against the no-op baseline is that, not Redis work JTM adds; the rest is JTM's own two scripts per task
(start-task, transition) and their share of the bulk ones: their instruction count is in scripts/bench/notes.md.

### JTM, INFO commandstats per task

${perTaskTable(mid(jtm, jtmCpu).stats, n)}

### Bare BullMQ, INFO commandstats per task

${perTaskTable(mid(bare, bareCpu).stats, n)}

### Scripts per task (slow-log run: every command with its µs)

JTM (${jtmScripts.scripts.entries.toLocaleString('en-US')} commands logged for ${nScripts.toLocaleString('en-US')} tasks):

${perTaskTable(jtmScripts.scripts.by, nScripts, { top: 20 })}

Bare BullMQ (${bareScripts.scripts.entries.toLocaleString('en-US')} commands logged):

${perTaskTable(bareScripts.scripts.by, nScripts, { top: 12 })}

### Redis memory per finished task, by key family (last JTM run, after all final)

${familyTable(memory.families, n, memory.bytesPerTask)}

INFO memory, delta ÷ N over the same run: ${memory.parts.map(p => `\`${p.name}\` ${fmt(p.perTask)} B`).join(', ')}
(the overhead part holds the keyspace's own tables and client buffers; the script cache is counted apart: BullMQ's
and JTM's scripts are cached once per server, so at N = ${nf} they weigh per task what they would not at 100,000).
The first JTM run on the fresh server came to ${fmt(firstMemory.bytesPerTask)} B per task (the figure above is the
last run's).

Not in the figure: Redis's per-command latency histograms. Redis ≥ 7 keeps one per command name
(\`latency-tracking\`, on by default), ≈ 25 KB each, allocated the first time the command runs after a start
or a \`CONFIG RESETSTAT\`, freed only by the next reset: ${fmt(memory.histogramBytes / 1024)} KB in this run
(${fmt(memory.histogramBytes / n)} B per task at N = ${nf}), a fixed cost per server whatever the number of
tasks. This was the "≈ 1 MB per run held by no key" of earlier figures: this benchmark resets the statistics
before each run (for its commandstats), so every run paid for them again; the whole-run figure is now read after
a reset at both ends.
`;
  return [
    {
      id: '8',
      figure: `8. Redis CPU per task lifecycle (${nf} × /bin/true, jtm submit -f, 1 worker × 4 slots)`,
      value: jtmCpu,
      unit: ' µs',
      baselineName: 'bare BullMQ addBulk + no-op Worker ×4',
      baseline: bareCpu,
      ratio,
      target: '≤ 1.5 ×',
      pass: ratio <= 1.5,
    },
    memoryRow('8', `8. Redis memory per finished task, whole run (${nf} tasks)`, memory.bytesPerTask, {
      section: { id: '8', markdown: section },
    }),
  ];
}

const totalUsec = stats => [...stats.values()].reduce((a, s) => a + s.usec, 0);
const totalCalls = stats => [...stats.values()].reduce((a, s) => a + s.calls, 0);
