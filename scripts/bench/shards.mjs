// Benchmark 9: one site spread over the masters of a Redis Cluster (issue 15 item 2, docs/scaling.md).
// A local 3-master cluster (cluster-enabled redis-servers joined by `redis-cli --cluster create`), JTM_SHARDS=3,
// three pools whose names route to shards 0, 1 and 2, one `jtm worker` each, and N `/bin/true` tasks over the
// three pools in one `jtm submit -f`. The figure: Redis CPU (INFO used_cpu_user + used_cpu_sys delta) of each
// master over the run, against their mean; target: every master within 25 % of the mean. Same-run baseline:
// the same load with JTM_SHARDS=1 on the same cluster (every key under one hash tag, so one master does it all).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';

import { startLocalRedis } from '../lib/local-redis.mjs';
import { assertBuilt, BIN, jtmEnv, jtmModule, openJtm, runProcess, tempDir } from './lib/jtm.mjs';
import { describeMachine } from './lib/machine.mjs';
import { fmt } from './lib/stats.mjs';

const MASTERS = 3;
const SLOTS = 2;
const TARGET = 0.25;

function redisCli(args) {
  const r = spawnSync('redis-cli', args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`redis-cli ${args.join(' ')}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** Three cluster-enabled masters, slots split evenly by `redis-cli --cluster create`. */
async function startCluster() {
  const servers = [];
  for (let i = 0; i < MASTERS; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'jtm-bench-cluster-'));
    servers.push(
      await startLocalRedis({
        dir,
        args: [
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-node-timeout',
          '5000',
        ],
      }),
    );
  }
  const nodes = servers.map(s => `127.0.0.1:${s.port}`);
  redisCli(['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
  for (let i = 0; ; i++) {
    if (servers.every(s => /cluster_state:ok/.test(redisCli(['-p', String(s.port), 'CLUSTER', 'INFO']))))
      break;
    if (i > 300) throw new Error('cluster did not reach cluster_state:ok');
    await new Promise(r => setTimeout(r, 100));
  }
  return {
    servers,
    url: `redis+cluster://${nodes.join(',')}`,
    stop: async () => {
      await Promise.all(servers.map(s => s.stop('SIGKILL')));
      for (const s of servers) rmSync(s.dir, { recursive: true, force: true });
    },
  };
}

async function cpuSeconds(redis) {
  const text = await redis.info('cpu');
  const get = k => Number(new RegExp(`${k}:([\\d.]+)`).exec(text)?.[1] ?? NaN);
  return get('used_cpu_user') + get('used_cpu_sys');
}

/** Pool names that route to shards 0..n-1 (the routing of src/redis/shards.ts itself). */
function poolsPerShard(shardOfPool, n, tag) {
  return Array.from({ length: n }, (_, k) => {
    for (let i = 0; ; i++) if (shardOfPool(`${tag}${i}`, n) === k) return `${tag}${i}`;
  });
}

/** One run: workers up, N tasks over the pools in one `jtm submit -f`, all final; CPU delta per master. */
async function runOnce(cluster, n, shards, tag) {
  const { shardOfPool } = await jtmModule('redis/shards.js');
  const { allShards } = await jtmModule('context.js');
  const prefix = `{${tag}}`;
  const vars = { JTM_SHARDS: String(shards), JTM_PREFIX: prefix };
  const pools = poolsPerShard(shardOfPool, MASTERS, `${tag}p`);
  const { ctx, close } = await openJtm(cluster.url, { vars });
  const nodes = cluster.servers.map(s => new Redis(s.port, '127.0.0.1'));
  const dir = tempDir('shards');
  const workers = pools.map(pool =>
    spawn(process.execPath, [BIN, 'worker', '-p', pool, '--slots', String(SLOTS)], {
      env: jtmEnv(cluster.url, { ...vars, JTM_LOG_DIR: tempDir('wlog') }),
      stdio: ['ignore', 'ignore', 'ignore'],
    }),
  );
  try {
    const shardCtxs = allShards(ctx);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const live = await Promise.all(shardCtxs.map(s => s.redis.zcard(s.keys.workers)));
      if (live.reduce((a, b) => a + b, 0) >= pools.length) break;
      if (Date.now() > deadline) throw new Error('workers did not start');
      await new Promise(r => setTimeout(r, 100));
    }
    const file = join(dir, 'tasks.jsonl');
    const lines = Array.from({ length: n }, (_, i) =>
      JSON.stringify({ command: '/bin/true', pool: { name: pools[i % pools.length] } }),
    );
    writeFileSync(file, `${lines.join('\n')}\n`);
    const cpu0 = await Promise.all(nodes.map(cpuSeconds));
    const t0 = Date.now();
    const res = await runProcess(process.execPath, [BIN, 'submit', '-f', file], {
      env: jtmEnv(cluster.url, vars),
    });
    if (res.code !== 0) throw new Error(`jtm submit -f exited ${res.code}: ${res.stderr.slice(0, 300)}`);
    const end = Date.now() + 600_000;
    for (;;) {
      const active = await Promise.all(shardCtxs.map(s => s.redis.zcard(s.keys.activeTasks)));
      if (active.every(a => a === 0)) break;
      if (Date.now() > end) throw new Error(`${active} tasks still active`);
      await new Promise(r => setTimeout(r, 50));
    }
    const seconds = (Date.now() - t0) / 1000;
    const cpu1 = await Promise.all(nodes.map(cpuSeconds));
    return { cpu: cpu1.map((c, i) => c - cpu0[i]), seconds, pools };
  } finally {
    for (const w of workers) w.kill('SIGTERM');
    await Promise.all(workers.map(w => (w.exitCode === null ? new Promise(r => w.once('exit', r)) : null)));
    await Promise.all(nodes.map(r => r.quit()));
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function spreadOf(cpu) {
  const mean = cpu.reduce((a, b) => a + b, 0) / cpu.length;
  const worst = Math.max(...cpu.map(c => Math.abs(c - mean) / mean));
  return { mean, worst };
}

export async function run({ quick, log }) {
  assertBuilt();
  const n = quick ? 900 : 6000;
  const cluster = await startCluster();
  let sharded;
  let single;
  try {
    log(`  JTM_SHARDS=3: ${n} tasks over 3 pools, one worker × ${SLOTS} slots each`);
    sharded = await runOnce(cluster, n, 3, 'b9s');
    log(`    Redis CPU per master: ${sharded.cpu.map(c => `${fmt(c * 1000)} ms`).join(', ')}`);
    log(`  JTM_SHARDS=1 (baseline): the same load`);
    single = await runOnce(cluster, n, 1, 'b9u');
    log(`    Redis CPU per master: ${single.cpu.map(c => `${fmt(c * 1000)} ms`).join(', ')}`);
  } finally {
    await cluster.stop();
  }
  const s = spreadOf(sharded.cpu);
  const u = spreadOf(single.cpu);
  const pass = s.worst <= TARGET;
  const perTask = sharded.cpu.map(c => (c * 1e6) / (n / MASTERS));
  const unshardedPerTask = (Math.max(...single.cpu) * 1e6) / n;
  const machine = describeMachine(new URL('../..', import.meta.url).pathname);
  const nf = n.toLocaleString('en-US');
  const row = (name, r) =>
    `| ${name} | ${r.cpu.map(c => `${fmt(c * 1000)} ms`).join(' | ')} | ${fmt(spreadOf(r.cpu).worst * 100)} % | ${fmt(n / r.seconds)} |`;
  const section = `## 9. Redis Cluster shards

Written by \`npm run bench -- ${quick ? '--quick ' : ''}--only=9\` (scripts/bench/shards.mjs).

- **Mode**: ${quick ? `quick (N = ${nf}; full mode is N = 6,000)` : `full (N = ${nf})`}
- **Date**: ${machine.date}
- **Commit**: ${machine.commit}
- **Machine**: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB memory, load average ${machine.load} at the end
- **Software**: Node ${machine.node}, redis-server ${machine.redis} (3 local cluster-enabled masters, no persistence)

How: a local Redis Cluster of 3 masters (\`redis-cli --cluster create\`, slots split evenly), \`JTM_SHARDS=3\`,
three pools whose names route to shards 0, 1 and 2 (${sharded.pools.map(p => `\`${p}\``).join(', ')}), one
\`jtm worker --slots ${SLOTS}\` each, and ${nf} \`/bin/true\` tasks over the three pools in one \`jtm submit -f\`.
Redis CPU is INFO \`used_cpu_user + used_cpu_sys\` of each master, delta over submit → every task final. The
baseline is the same load with \`JTM_SHARDS=1\` (every key under one hash tag) on the same cluster, same run.
The 2-core machine also runs the workers and the CLI: the spread, not the µs, is the figure.

| run | master 1 CPU | master 2 CPU | master 3 CPU | worst distance from the mean | tasks/s |
|---|---|---|---|---|---|
${row('JTM_SHARDS=3', sharded)}
${row('JTM_SHARDS=1 (baseline)', single)}

Redis CPU per task on each shard (delta ÷ its ${fmt(n / MASTERS)} tasks): ${perTask.map(v => `${fmt(v)} µs`).join(', ')};
unsharded, the one busy master spent ${fmt(unshardedPerTask)} µs per task. Target: every master within
${TARGET * 100} % of the mean with JTM_SHARDS=3: **${pass ? 'met' : 'missed'}** (worst ${fmt(s.worst * 100)} %;
unsharded ${fmt(u.worst * 100)} %).
`;
  return [
    {
      id: '9',
      figure: `9. Redis CPU per master, 3-master cluster, JTM_SHARDS=3 (${nf} tasks over 3 pools): worst distance from the mean`,
      value: s.worst * 100,
      unit: ' %',
      baselineName: 'JTM_SHARDS=1',
      baseline: u.worst * 100,
      target: '≤ 25 %',
      pass,
      section: { id: '9', markdown: section },
    },
  ];
}
