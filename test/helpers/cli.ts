import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { runProcess, type ProcessResult } from '../../scripts/lib/run-process.mjs';
import { loadConfig } from '../../src/config.js';
import { closeContext, openContext, type JtmContext } from '../../src/context.js';
import { silentLogger } from '../../src/logger.js';
import { readManagerAlive } from '../../src/manager/liveness.js';
import { countWorkers } from '../../src/pools/count-workers.js';
import { getTaskStatus } from '../../src/tasks/query-task.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

/** What a jtm process gave: its exit code (null when killed), stdout and stderr. */
export type CliResult = ProcessResult;

/** Runs the built `jtm` binary as a process, as Cromwell and users do. `argv0` runs it under a legacy name. */
export function runJtm(
  args: readonly string[],
  env: Record<string, string>,
  opts: { cwd?: string; timeoutMs?: number; argv0?: string; input?: string } = {},
): Promise<CliResult> {
  return runProcess(process.execPath, [opts.argv0 ?? BIN, ...args], {
    env,
    cwd: opts.cwd ?? ROOT,
    timeoutMs: opts.timeoutMs ?? 30_000,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
  });
}

/** Parses `JTM task ID <n>` lines. */
/**
 * `jtm logs -tid N` (`--follow` with `follow`), stdout kept as bytes; killed after `timeoutMs`. `onOutput` is
 * called at each piece of stdout (a test that must act once the command has read the task waits for it).
 */
export function logsBytes(
  env: Record<string, string>,
  id: number,
  follow = false,
  timeoutMs = 60_000,
  onOutput?: () => void,
): Promise<{ code: number | null; out: Buffer; err: string }> {
  return new Promise((resolve, reject) => {
    const args = [BIN, 'logs', '-tid', String(id), ...(follow ? ['--follow'] : [])];
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out.push(d);
      onOutput?.();
    });
    child.stderr.on('data', d => (err += String(d)));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code, out: Buffer.concat(out), err });
    });
  });
}

export function taskIds(stdout: string): number[] {
  return [...stdout.matchAll(/^JTM task ID (\d+)$/gm)].map(m => Number(m[1]));
}

export interface BackgroundProcess {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Starts a long-running jtm command (worker, manager, dashboard) in the background. */
export function startJtm(
  args: readonly string[],
  env: Record<string, string>,
  cwd = ROOT,
): BackgroundProcess {
  const child = spawn(process.execPath, [BIN, ...args], { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', d => (out += d));
  child.stderr?.on('data', d => (out += d));
  const exited = new Promise<number | null>(r => child.on('exit', code => r(code)));
  return {
    child,
    output: () => out,
    exited,
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** The status name `jtm status` prints for a task (the command itself, as a process). */
export async function statusOf(env: Record<string, string>, id: number): Promise<string> {
  return (await runJtm(['status', '-tid', String(id)], env)).stdout.trim();
}

/** Contexts the waits below poll through, one per Redis and prefix; closed after each test file (cleanup.ts). */
const pollers = new Map<string, Promise<JtmContext>>();

/**
 * Polls `probe` on an in-process context of `env` until it answers something other than undefined/false.
 * The waits poll the functions the commands call, instead of spawning a command every 200 ms (a process
 * start costs half a second of CPU): the commands' own output is checked where a test means it. A Redis
 * that is down or restarting is retried until the deadline.
 */
async function pollIn<T>(
  env: Record<string, string>,
  probe: (ctx: JtmContext) => Promise<T | undefined | false>,
  what: () => string,
  timeoutMs: number,
): Promise<T> {
  const key = `${env['REDIS_URL'] ?? ''} ${env['JTM_PREFIX'] ?? ''}`;
  const deadline = Date.now() + timeoutMs;
  let error = '';
  for (;;) {
    try {
      let ctx = pollers.get(key);
      if (!ctx) {
        ctx = openContext(loadConfig(env), silentLogger(), 'client');
        pollers.set(key, ctx);
      }
      const v = await probe(await ctx);
      if (v !== undefined && v !== false) return v;
      error = '';
    } catch (err) {
      // Reconnect on the next poll: a client connection fails fast and stays failed.
      const ctx = pollers.get(key);
      pollers.delete(key);
      await ctx?.then(closeContext).catch(() => {});
      error = `; last error: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what()}${error}`);
    await new Promise(r => setTimeout(r, 100));
  }
}

/** Waits (bounded) until the task's status (what `jtm status` prints: getTaskStatus) is `want`. */
export async function waitStatus(
  env: Record<string, string>,
  id: number,
  want: string,
  timeoutMs = 30_000,
): Promise<void> {
  let last = '';
  await pollIn(
    env,
    async ctx => (last = (await getTaskStatus(ctx, id)).status) === want,
    () => `task ${id} to be ${want} (last: ${last})`,
    timeoutMs,
  );
}

/**
 * Waits in-process until the task is `want` (waitStatus), then checks that `jtm status`, the process, prints
 * it too: one process per check instead of one every poll while waiting.
 */
export async function waitStatusShown(...args: Parameters<typeof waitStatus>): Promise<void> {
  await waitStatus(...args);
  const [env, id, want] = args;
  const shown = await runJtm(['status', '-tid', String(id)], env);
  if (shown.stdout.trim() !== want)
    throw new Error(
      `jtm status -tid ${id} printed ${JSON.stringify(shown.stdout)}, not ${want} (${shown.stderr})`,
    );
}

/** Waits (bounded) until `pool` has at least `slots` live worker slots (what `jtm check-worker` counts). */
export async function waitWorkers(
  env: Record<string, string>,
  pool: string,
  slots = 1,
  timeoutMs = 20_000,
): Promise<void> {
  let last = 0;
  await pollIn(
    env,
    async ctx => (last = (await countWorkers(ctx, pool)).total) >= slots,
    () => `${slots} worker slots in pool ${pool} (last: ${last})`,
    timeoutMs,
  );
}

/** Waits (bounded) until a manager is alive, or until none is (what `jtm check-manager` reads). */
export async function waitManager(
  env: Record<string, string>,
  alive = true,
  timeoutMs = 20_000,
): Promise<void> {
  await pollIn(
    env,
    async ctx => ((await readManagerAlive(ctx)) !== undefined) === alive,
    () => `a manager to be ${alive ? 'alive' : 'gone'}`,
    timeoutMs,
  );
}

/** Closes the contexts the waits opened (after each test file). */
export async function closePollers(): Promise<void> {
  const all = [...pollers.values()];
  pollers.clear();
  await Promise.all(all.map(p => p.then(closeContext).catch(() => {})));
}
