#!/usr/bin/env node
// `node scripts/bench/report.mjs [--tasks 100000]`: writes N finished task records as workers leave them
// (record hash, event list, a short resource-sample stream each, one BullMQ-like job hash each: the keys a
// real run leaves, so SCAN walks a realistic key space) on a private Redis, then times cold `jtm report`
// runs: --json to /dev/null and the HTML file. Build first (npm run build).
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

import { startLocalRedis } from '../lib/local-redis.mjs';
import { BIN, assertBuilt, jtmEnv, jtmModule, openJtm, runProcess, tempDir } from './lib/jtm.mjs';

const { values } = parseArgs({
  options: { tasks: { type: 'string', default: '100000' }, 'redis-url': { type: 'string' } },
});
const N = Number(values.tasks);
const CALLS = [
  'align',
  'sort',
  'call_variants',
  'merge_vcf',
  'qc_report',
  'trim_reads',
  'assemble',
  'annotate',
];
const STATUSES = [4, 4, 4, 4, 4, 4, 4, 4, 4, -2, -6, -7];
const POOLS = 10;
const WORKERS = 200;

assertBuilt();
// --redis-url: an existing (empty) Redis, left running with the data, to profile `jtm report` against.
const redis = values['redis-url']
  ? { url: values['redis-url'], stop: async () => {} }
  : await startLocalRedis();
const { ctx, close } = await openJtm(redis.url);
try {
  const t0 = Date.now() - 6 * 3600_000;
  for (let start = 1; start <= N; start += 1000) {
    const pipe = ctx.redis.pipeline();
    for (let id = start; id < Math.min(N + 1, start + 1000); id++) {
      const status = STATUSES[id % STATUSES.length];
      const call = CALLS[id % CALLS.length];
      const queued = t0 + id * 200;
      const started = queued + 1000 + (id % 37) * 100;
      const ended = started + 5000 + (id % 101) * 1000;
      const w = `node${id % WORKERS}-${1000 + (id % WORKERS)}`;
      pipe.hset(ctx.keys.task(id), {
        id,
        status,
        command: `bash /data/cromwell-executions/wf/8a3f2c1d/call-${call}/execution/script`,
        pool: `pool${id % POOLS}`,
        pool_spec: JSON.stringify({
          name: `pool${id % POOLS}`,
          time: '01:00:00',
          cpu: 4,
          mem: '16G',
          nwpn: 1,
        }),
        cwd: `/data/cromwell-executions/wf/8a3f2c1d/call-${call}`,
        cromwell_job_id: `cromwell_8a3f2c1d_${call}`,
        exit_code: status === 4 ? 0 : 1,
        reason: status === 4 ? 'exit code 0' : status === -6 ? 'timed out after 3600 s' : `exit code 1`,
        worker_id: w,
        host: `node${id % WORKERS}`,
        attempts: 1 + (id % 13 === 0 ? 1 : 0),
        max_retries: 1,
        queued_at: queued,
        started_at: started,
        ended_at: ended,
        peak_rss_mb: 200 + (id % 3000),
        cpu_time_s: ((ended - started) / 1000) * (0.5 + (id % 7) * 0.4),
        // the history field as the scripts write it (src/store/task-history.ts)
        history: `0,0,1;${started - queued},2,3,~;${ended - queued},3,${status}`,
      });
      for (let s = 0; s < 3; s++) {
        pipe.xadd(
          ctx.keys.taskResources(id),
          '*',
          'sample',
          JSON.stringify({ task_id: id, run_time: s * 5, cpu_load: 100 + s * 50, rmem_usage: 100 + s * 80 }),
        );
      }
      pipe.hset(ctx.keys.poolJob(`pool${id % POOLS}`, `task-${id}`), { name: 'task', data: `{"id":${id}}` });
    }
    await pipe.exec();
  }
  await ctx.redis.set(ctx.keys.nextTaskId, N);
  const keys = await ctx.redis.dbsize();
  const env = jtmEnv(redis.url);
  const dir = tempDir('report');
  const html = join(dir, 'report.html');
  const rows = [];
  for (let i = 0; i < 2; i++) {
    const json = await runProcess(process.execPath, [BIN, 'report', '--json'], { env });
    if (json.code !== 0) throw new Error(`jtm report --json failed: ${json.stderr}`);
    const file = await runProcess(process.execPath, [BIN, 'report', '-o', html], { env });
    if (file.code !== 0) throw new Error(`jtm report failed: ${file.stderr}`);
    rows.push({ json_ms: Math.round(json.ms), html_ms: Math.round(file.ms) });
  }
  // In process: the CPU this process and Redis spent (the machine is shared: CPU time says more than wall).
  const { buildReport } = await jtmModule('report/build-report.js');
  const redisCpu = async () => {
    const info = await ctx.redis.info('cpu');
    return (
      (Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1]) + Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1])) *
      1000
    );
  };
  const redis0 = await redisCpu();
  const cpu0 = process.cpuUsage();
  const t1 = performance.now();
  const data = await buildReport(ctx, {});
  const wall = performance.now() - t1;
  const cpu = process.cpuUsage(cpu0);
  const redisMs = (await redisCpu()) - redis0;
  const inProcess = {
    wall_ms: Math.round(wall),
    node_cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
    redis_cpu_ms: Math.round(redisMs),
  };
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ')[0];
  process.stdout.write(
    `${JSON.stringify({ tasks: data.tasks, redis_keys: keys, html_bytes: statSync(html).size, cold_cli_runs: rows, in_process: inProcess, load_average: load }, null, 2)}\n`,
  );
} finally {
  await close();
  await redis.stop();
}
