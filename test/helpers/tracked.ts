// What a test file starts and must stop: jtm daemons and in-process contexts, registered as they are made,
// stopped (SIGKILL) and closed by `stopTracked` in the file's afterAll, whatever its tests did. One copy of
// the bookkeeping that manager, jtm-ends-tasks, redis-pause, submit-commit and expire-pools each wrote.
import type { JtmContext } from '../../src/context.js';
import { startJtm, type BackgroundProcess } from './cli.js';
import { closeContext, openTestContext } from './context.js';

const started: BackgroundProcess[] = [];
const contexts: JtmContext[] = [];

/** Starts a long-running jtm command (worker, manager, submit), killed by stopTracked. */
export function start(args: readonly string[], env: Record<string, string>): BackgroundProcess {
  const p = startJtm(args, env);
  started.push(p);
  return p;
}

/** An in-process context on `env`'s prefix, closed by stopTracked. */
export async function context(env: Record<string, string>): Promise<JtmContext> {
  const ctx = await openTestContext(env);
  contexts.push(ctx);
  return ctx;
}

/** Kills what `start` started, then closes what `context` opened (a file's afterAll). */
export async function stopTracked(): Promise<void> {
  await Promise.all(started.splice(0).map(p => p.stop('SIGKILL')));
  await Promise.all(contexts.splice(0).map(c => closeContext(c)));
}
