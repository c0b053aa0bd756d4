import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { loadConfig } from '../../src/config.js';
import { closeContext, openContext, type JtmContext } from '../../src/context.js';
import { silentLogger } from '../../src/logger.js';
import { getTaskStatus } from '../../src/tasks/query-task.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `jtm` binary as a process, as Cromwell and users do. `argv0` runs it under a legacy name. */
export function runJtm(
  args: readonly string[],
  env: Record<string, string>,
  opts: { cwd?: string; timeoutMs?: number; argv0?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const script = opts.argv0 ? opts.argv0 : BIN;
    const child = spawn(process.execPath, [script, ...args], {
      env,
      cwd: opts.cwd ?? ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', d => (stdout += d));
    child.stderr.on('data', d => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 30_000);
    child.on('error', reject);
    child.on('close', code => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Parses `JTM task ID <n>` lines. */
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

/** Contexts waitStatus polls through, one per Redis and prefix; closed after each test file (cleanup.ts). */
const pollers = new Map<string, Promise<JtmContext>>();

/**
 * Waits (bounded) until the task's status is `want`. Polls in-process through the function `jtm status`
 * calls (getTaskStatus), not by spawning the command every 200 ms: the command's own output is checked by
 * statusOf where a test means it. A Redis that is down or restarting is retried until the deadline.
 */
export async function waitStatus(
  env: Record<string, string>,
  id: number,
  want: string,
  timeoutMs = 30_000,
): Promise<void> {
  const key = `${env['REDIS_URL'] ?? ''} ${env['JTM_PREFIX'] ?? ''}`;
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    try {
      let ctx = pollers.get(key);
      if (!ctx) {
        ctx = openContext(loadConfig(env), silentLogger(), 'client');
        pollers.set(key, ctx);
      }
      last = (await getTaskStatus(await ctx, id)).status;
      if (last === want) return;
    } catch (err) {
      // Reconnect on the next poll: a client connection fails fast and stays failed.
      const ctx = pollers.get(key);
      pollers.delete(key);
      await ctx?.then(closeContext).catch(() => {});
      last = `error: ${err instanceof Error ? err.message : String(err)}`;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for task ${id} to be ${want} (last: ${last})`);
    await new Promise(r => setTimeout(r, 100));
  }
}

/** Closes the contexts waitStatus opened (after each test file). */
export async function closePollers(): Promise<void> {
  const all = [...pollers.values()];
  pollers.clear();
  await Promise.all(all.map(p => p.then(closeContext).catch(() => {})));
}
