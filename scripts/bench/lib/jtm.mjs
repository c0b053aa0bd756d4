// Access to the built JTM (dist/) for the benchmarks: a context on a private Redis, a worker process,
// cold CLI runs. Build first: npx tsc -p tsconfig.json && node scripts/write-manifest.mjs
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'run.js');

const dist = p => new URL(`../../../dist/src/${p}`, import.meta.url).href;

export function assertBuilt() {
  if (
    !existsSync(join(ROOT, 'dist', 'src', 'context.js')) ||
    !existsSync(join(ROOT, 'oclif.manifest.json'))
  ) {
    throw new Error('dist/ is missing: run npx tsc -p tsconfig.json && node scripts/write-manifest.mjs');
  }
}

/** A JTM context on `url` with a silent logger, as a library caller would open it. */
export async function openJtm(url, env = {}) {
  const [{ loadConfig }, { openContext, closeContext }, { silentLogger }] = await Promise.all([
    import(dist('config.js')),
    import(dist('context.js')),
    import(dist('logger.js')),
  ]);
  const config = loadConfig({ REDIS_URL: url, JTM_LOG_DIR: env.logDir ?? tempDir('log'), ...env.vars });
  const ctx = await openContext(config, silentLogger(), 'worker');
  return { ctx, close: () => closeContext(ctx) };
}

export async function jtmModule(path) {
  return import(dist(path));
}

export function tempDir(tag) {
  return mkdtempSync(join(tmpdir(), `jtm-bench-${tag}-`));
}

/** Environment for a JTM process on the private Redis (nothing from the caller's Redis leaks in). */
export function jtmEnv(url, extra = {}) {
  const env = { ...process.env, REDIS_URL: url, JTM_LOG_LEVEL: 'warn', ...extra };
  delete env.JTM_REDIS_URL;
  delete env.JTM_CONFIG_FILE;
  return env;
}

/** Starts `jtm worker` as its own process; resolves once its heartbeat is in Redis. */
export async function startWorkerProcess(url, ctx, pool, slots, extraEnv = {}, nodeArgs = []) {
  const child = spawn(process.execPath, [...nodeArgs, BIN, 'worker', '-p', pool, '--slots', String(slots)], {
    env: jtmEnv(url, { JTM_LOG_DIR: tempDir('wlog'), ...extraEnv }),
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', d => (stderr += d));
  const deadline = Date.now() + 20_000;
  while ((await ctx.redis.zcard(ctx.keys.workers)) === 0) {
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`worker did not start: ${stderr.slice(-500)}`);
    }
    await new Promise(r => setTimeout(r, 50));
  }
  const stop = async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise(r => child.once('exit', r));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  };
  return { child, stop };
}

/** Runs a command to completion; resolves with its wall time in ms, exit code and output. */
export function runProcess(cmd, args, opts = {}) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...opts });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    child.on('error', reject);
    child.on('close', code => resolve({ ms: performance.now() - t0, code, stdout, stderr }));
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** Builds `n` validated tasks for `pools` pools (round robin), the way submit's task file does. */
export async function makeTasks(n, pools, command = '/bin/true') {
  const { buildTask } = await jtmModule('tasks/task-spec.js');
  const cwd = tmpdir();
  const tasks = [];
  for (let i = 0; i < n; i++) {
    tasks.push(buildTask({ command }, { pool: poolName(i % pools), cwd, maxCommandBytes: 65536 }));
  }
  return tasks;
}

export function poolName(i) {
  return `bench${i}`;
}

/** Waits until no task is active (every task has its final status). */
export async function waitAllFinal(ctx, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const active = await ctx.redis.zcard(ctx.keys.activeTasks);
    if (active === 0) return;
    if (Date.now() > deadline) throw new Error(`${active} tasks still active after ${timeoutMs} ms`);
    await new Promise(r => setTimeout(r, 20));
  }
}
