import type * as InspectorModule from 'node:inspector';
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';

import type { Logger } from './logger.js';

/**
 * The one owner of process signals. The first SIGTERM/SIGINT/SIGHUP asks for a graceful stop (running tasks
 * get their grace period); a second one, or SIGQUIT, an immediate stop (tasks are still given back). SIGUSR1 is
 * Slurm's early warning before walltime (`sbatch --signal`): drain, where there is something to drain.
 * SIGUSR2 is ignored. Left to Node's default, HUP (a login shell that closes on `jtm worker &`, a service's
 * reload), QUIT and USR2 killed a daemon like SIGKILL: nothing logged, its tasks lost and their retries spent.
 * SIGPIPE is left alone (stderr to a closed pipe must not kill a worker mid-task).
 */
export interface ShutdownHandlers {
  stop: (force: boolean) => Promise<void>;
  drain?: () => void;
}

export function installShutdown(handlers: ShutdownHandlers, logger: Logger): () => void {
  let stopping = false;
  const onStop = (signal: NodeJS.Signals): void => {
    const force = stopping || signal === 'SIGQUIT';
    const message = !force
      ? 'stopping gracefully'
      : stopping
        ? 'second signal: stopping now'
        : `${signal}: stopping now`;
    stopping = true;
    logger.info({ signal, force }, message);
    handlers.stop(force).catch(err => logger.error({ err }, 'error while stopping'));
  };
  const onDrain = (): void => {
    if (!handlers.drain) {
      logger.info('SIGUSR1: nothing to drain here (ignored)');
      return;
    }
    logger.info('SIGUSR1: draining');
    handlers.drain();
  };
  const onIgnored = (signal: NodeJS.Signals): void => logger.info({ signal }, 'signal ignored');
  process.on('SIGTERM', onStop);
  process.on('SIGINT', onStop);
  process.on('SIGHUP', onStop);
  process.on('SIGQUIT', onStop);
  process.on('SIGUSR1', onDrain);
  process.on('SIGUSR2', onIgnored);
  // A SIGUSR1 that came before these handlers (taken by bin/run.js's first line): the drain it asked for.
  if (early[EARLY_USR1] === true) {
    early[EARLY_USR1] = false;
    onDrain();
  }
  closeUnaskedInspector(logger, onDrain);
  return () => {
    process.off('SIGTERM', onStop);
    process.off('SIGINT', onStop);
    process.off('SIGHUP', onStop);
    process.off('SIGQUIT', onStop);
    process.off('SIGUSR1', onDrain);
    process.off('SIGUSR2', onIgnored);
  };
}

/** Set by bin/run.js's first line when a SIGUSR1 came before these handlers. */
const EARLY_USR1 = Symbol.for('jtm.earlyUsr1');
const early = globalThis as Record<symbol, unknown>;

/**
 * Closes Node's inspector when a SIGUSR1 opened it during Node's own start, before bin/run.js could take the
 * signal (a debugger on 127.0.0.1:9229: any local user could run code as this daemon's user), and drains as for
 * that signal. Left open when asked for on Node's command line (`--inspect…`).
 */
function closeUnaskedInspector(logger: Logger, drain: () => void): void {
  // Asked for on Node's command line (`node --inspect bin/run.js worker …`); NODE_OPTIONS is not looked at (only
  // loadConfig reads the environment): an inspector asked for there is closed too, with this warning.
  if (process.execArgv.some(a => a.startsWith('--inspect'))) return;
  // Loaded only here (1.5 ms), by the daemons: not by every command that imports this module. Not import(): the
  // hot commands run as a script with a code cache (src/cli/fast/code-cache.ts), where import() is refused; nor
  // process.getBuiltinModule, which Node 20 has only from 20.16.
  const inspector = createRequire(process.execPath)('node:inspector') as typeof InspectorModule;
  const url = inspector.url();
  if (url === undefined) return;
  inspector.close();
  logger.warn(
    { url },
    "a SIGUSR1 came during Node's start, before JTM could take it: Node's inspector was opened, and is closed",
  );
  // The signal was a drain's, as one that came later.
  drain();
}

/**
 * After a daemon has stopped and released what it could, make sure the process ends: a client still trying
 * to reach an unreachable Redis would otherwise keep it alive. Unreferenced, so a clean exit is not delayed.
 */
export function exitSoonAfterStop(graceMs = 2000): void {
  setTimeout(() => process.exit(process.exitCode ?? 0), graceMs).unref();
}

/** How long a stop asked for during a daemon's start waits for the start to end before ending the process. */
const UNSTARTED_STOP_MS = 5000;

/**
 * installShutdown for a daemon whose parts are still starting: signals are handled from this call on, and a
 * stop asked for before `ready` is done as soon as `ready` gives the handlers. A daemon logs "started" as each
 * part starts, and a SIGTERM right after such a line (a supervisor, a test) killed the manager and the dashboard
 * by the default action — 16 and 19 times in 20 — with nothing closed.
 */
export function installShutdownEarly(logger: Logger): {
  ready: (handlers: Omit<ShutdownHandlers, 'drain'>) => void;
  uninstall: () => void;
} {
  let handlers: Omit<ShutdownHandlers, 'drain'> | undefined;
  /** A stop asked for before ready (true: forced by a second signal). */
  let asked: boolean | undefined;
  let notReady: NodeJS.Timeout | undefined;
  // A start that waits for Redis may never get to `ready` (the dashboard ignored SIGTERM and a second one while
  // Redis was down): nothing of it serves yet, so after a moment, or at a second signal, the process just ends.
  const endUnstarted = (): void => {
    logger.info('stopped before it had started');
    process.exit(process.exitCode ?? 0);
  };
  const uninstall = installShutdown(
    {
      stop: force => {
        if (handlers) return handlers.stop(force);
        asked = (asked ?? false) || force;
        if (force) endUnstarted();
        notReady ??= setTimeout(endUnstarted, UNSTARTED_STOP_MS);
        return Promise.resolve();
      },
      // No drain: the daemons started this way (manager, dashboard) have none, and SIGUSR1 says so.
    },
    logger,
  );
  return {
    ready: h => {
      handlers = h;
      clearTimeout(notReady);
      if (asked !== undefined) h.stop(asked).catch(err => logger.error({ err }, 'error while stopping'));
    },
    uninstall: () => {
      clearTimeout(notReady);
      uninstall();
    },
  };
}

/** How long a daemon's stop waits for what it closes before the process ends anyway. */
const STOP_GRACE_MS = 5000;

/**
 * Closes a daemon's parts, waiting at most STOP_GRACE_MS (not at all when `force`, a second signal): closing
 * BullMQ's workers and queues waits for Redis, and with Redis gone the manager and the dashboard ignored
 * SIGTERM, a second one too. Resolves when closed or given up on (said in a warning).
 */
export async function closeWithin(
  close: () => Promise<unknown>,
  force: boolean,
  what: string,
  logger: Logger,
): Promise<void> {
  const closed = await Promise.race([
    close().then(
      () => true,
      () => true,
    ),
    sleep(force ? 0 : STOP_GRACE_MS, false, { ref: false }),
  ]);
  if (!closed && !force) {
    logger.warn({ graceMs: STOP_GRACE_MS }, `${what} did not stop in time (Redis unreachable?): exiting`);
  }
}

/** The exit code a shell gives a command that a signal ended: 128 + its number (SIGINT 130, SIGTERM 143). */
export function signalExitCode(signal: NodeJS.Signals): number {
  return 128 + (constants.signals[signal] ?? 0);
}

/** How long work taken back by a signal is given to undo what it wrote before the process ends anyway. */
const TAKE_BACK_MS = 5000;

export interface TakeBackHandlers {
  /** A signal: true when the work was taken back (it now ends by itself), false when it is past its point of no return. */
  takeBack: (signal: NodeJS.Signals) => boolean;
  /** The first signal that came past the point of no return: the work finishes all the same. */
  finishing: (signal: NodeJS.Signals) => void;
  /** Taken back, and a second signal came or the work did not end within TAKE_BACK_MS: end the process now. */
  end: (signal: NodeJS.Signals) => void;
}

/**
 * Signals (SIGINT, SIGTERM, SIGHUP, SIGQUIT) during a client's work that has a point of no return (`jtm submit`'s
 * commit): before it, the work is taken back and ends by itself, or at a second signal, or after TAKE_BACK_MS,
 * at once (what it wrote is then undone by whoever reconciles); past it, every signal is ignored and the work
 * finishes, since ending then is what breaks the promise (a submit that exited 130 while its tasks ran,
 * adversary 34 H1). Left to Node's default, each of them ended the process wherever it was.
 */
export function installTakeBack(handlers: TakeBackHandlers): () => void {
  let taken: NodeJS.Signals | undefined;
  let finishing = false;
  const on = (signal: NodeJS.Signals): void => {
    if (taken) return handlers.end(taken);
    if (finishing) return;
    if (handlers.takeBack(signal)) {
      taken = signal;
      setTimeout(() => handlers.end(signal), TAKE_BACK_MS).unref();
      return;
    }
    finishing = true;
    handlers.finishing(signal);
  };
  // When the work is done and nothing is left to run, Node's own exit first closes every handle, the signal
  // watchers included, which puts the signals' default action back while the process is still ending: a SIGTERM
  // then ended a submit 143 after it had printed its id and committed (1 in 80 one-task submits). process.exit
  // ends it without that teardown, the handlers in place to the end (a signal then changes nothing).
  const exitNow = (): never => process.exit();
  const signals: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'];
  for (const s of signals) process.on(s, on);
  process.once('beforeExit', exitNow);
  return () => {
    for (const s of signals) process.off(s, on);
    process.off('beforeExit', exitNow);
  };
}
