#!/usr/bin/env node
// `npm run demo`: the main job end to end on an embedded default. Installs and builds if needed, starts a
// private redis-server when REDIS_URL is unset, starts a worker, submits a few tasks (one fails, one is
// killed), shows their statuses, and stops everything it started.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { INSTALL_HINT, findRedisServer, startLocalRedis } from './lib/local-redis.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const say = text => process.stdout.write(`\n== ${text}\n`);
const npm = args => {
  const r = spawnSync('npm', args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
};

if (!existsSync(join(root, 'node_modules'))) {
  say('installing dependencies (npm install, as pinned by package-lock.json)');
  npm(['install', '--no-audit', '--no-fund']);
}
if (!existsSync(join(root, 'dist', 'commands')) || !existsSync(join(root, 'oclif.manifest.json'))) {
  say('building (npm run build)');
  npm(['run', '--silent', 'build']);
}

let redis;
const env = {
  ...process.env,
  JTM_LOG_DIR: mkdtempSync(join(tmpdir(), 'jtm-demo-')),
  JTM_PREFIX: '{jtm-demo}',
};
if (!env.REDIS_URL) {
  if (!findRedisServer()) {
    console.error(`jtm demo: ${INSTALL_HINT}`);
    process.exit(1);
  }
  redis = await startLocalRedis();
  env.REDIS_URL = redis.url;
  say(`started a private redis-server at ${redis.url} (data in ${redis.dir})`);
} else {
  say(`using REDIS_URL from the environment`);
}

const bin = join(root, 'bin', 'run.js');
const jtm = args => {
  const r = spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout.trim(), err: r.stderr.trim() };
};
const show = args => {
  const r = jtm(args);
  process.stdout.write(
    `$ jtm ${args.map(a => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}\n${r.out}${r.out ? '\n' : ''}(exit ${r.code})\n`,
  );
  return r;
};

let worker;
let manager;
try {
  say('starting a manager (recovery, reconciliation, pool expiry) and a worker on pool "demo" with 2 slots');
  manager = spawn(process.execPath, [bin, 'manager', '--sweep-interval', '1s'], { env, stdio: 'ignore' });
  worker = spawn(process.execPath, [bin, 'worker', '-p', 'demo', '--slots', '2'], { env, stdio: 'ignore' });
  for (let i = 0; i < 100 && jtm(['check-worker', '-p', 'demo']).code !== 0; i++)
    await new Promise(r => setTimeout(r, 100));
  show(['check-worker', '-p', 'demo']);
  for (let i = 0; i < 100 && jtm(['check-manager']).code !== 0; i++)
    await new Promise(r => setTimeout(r, 100));
  show(['check-manager']);

  say('submitting tasks (what Cromwell does for each call)');
  const ids = {};
  for (const [name, cmd] of [
    ['hello', 'echo "hello from $(hostname)"; sleep 1'],
    ['pipeline', 'seq 1 100000 | sort -rn | head -3'],
    ['failing', 'echo "about to fail" >&2; exit 3'],
    ['long', 'sleep 300'],
  ]) {
    const r = show(['submit', '-cmd', cmd, '-p', 'demo']);
    ids[name] = Number(/JTM task ID (\d+)/.exec(r.out)?.[1]);
  }
  await new Promise(r => setTimeout(r, 2500));
  say('statuses after 2.5 s (exit 0 = still active)');
  for (const [name, id] of Object.entries(ids)) {
    process.stdout.write(`${name}: `);
    show(['status', '-tid', String(id)]);
  }
  say('killing the long task (its whole process tree), then asking Cromwell-style whether it is alive');
  show(['kill', '-tid', String(ids.long)]);
  show(['isalive', '-tid', String(ids.long)]);
  say('the failing task in full (jtm status --json)');
  const rec = JSON.parse(jtm(['status', '-tid', String(ids.failing), '--json']).out);
  process.stdout.write(
    `${JSON.stringify({ id: rec.id, status: rec.status_name, exit_code: rec.exit_code, reason: rec.reason, worker: rec.worker_id }, null, 2)}\n`,
  );
  say('its resource samples and the pools (jtm resource-log, jtm pools)');
  const samples = JSON.parse(jtm(['resource-log', '-tid', String(ids.hello)]).out).resource_log;
  process.stdout.write(
    `task ${ids.hello}: ${samples.length} sample(s), e.g. ${JSON.stringify(samples[0] ?? {})}\n`,
  );
  show(['pools']);
  say(`task output files are under ${join(env.JTM_LOG_DIR, 'tasks')}`);
} finally {
  say('stopping the worker and the manager' + (redis ? ', then the private redis-server' : ''));
  await Promise.all(
    [worker, manager].filter(Boolean).map(p => {
      const exited = new Promise(r => p.once('exit', r));
      p.kill('SIGTERM');
      return exited;
    }),
  );
  if (redis) await redis.stop();
}
