import { fork, type ChildProcess } from 'node:child_process';

import type { HostMessage, WorkerMessage } from './pty-protocol.js';

/** A command in a pseudo-terminal, in its own session and process group (started by the pty host). */
export interface PtyProcess {
  readonly pid: number;
  /** Resolves when the command has exited (signal: the number of the signal that ended it, else 0). */
  readonly exited: Promise<PtyExit>;
}

export interface PtyExit {
  exitCode: number;
  signal: number;
  /** The pty host died under the command (its pty closed, its session got SIGHUP): not the command's doing. */
  hostExited?: boolean;
  /** The pty host's watchdog killed it: this worker had stopped answering (see pty-host.ts). */
  watchdog?: boolean;
}

/** The pty host died before it could start the command. */
export class PtyHostExited extends Error {
  constructor() {
    super('pty host exited');
    this.name = 'PtyHostExited';
  }
}

export interface PtyOptions {
  cwd: string;
  env: Record<string, string>;
  /** Called with each chunk of what reaches the pty, as UTF-8 text. */
  onOutput: (chunk: string) => void;
  /** The task's JTM_TASK_TOKEN (the host finds its detached processes by it). */
  token: string;
}

interface Pending {
  onOutput: (chunk: string) => void;
  started: (pid: number) => void;
  failed: (err: Error) => void;
  exited: (e: PtyExit) => void;
}

const SIGHUP = 1;
let host: ChildProcess | undefined;
/** The environment the host was started with: requests carry only the differences. */
let hostEnv: Record<string, string> = {};
let nextId = 1;
/** The watchdog deadline given to the host (0: none), and the ping timer that keeps it from firing. */
let watchdogMs = 0;
let pinger: NodeJS.Timeout | undefined;
const pending = new Map<number, Pending>();

/** The pty host of this process, started on first use (and again if it ever dies). */
function ptyHost(env: Record<string, string>): ChildProcess {
  if (host && host.connected) return host;
  // The host's own environment must not carry one task's identity (JTM_TASK_TOKEN finds a task's processes:
  // a child between fork and exec still shows the host's environment).
  hostEnv = Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('JTM_TASK_')));
  const child = fork(new URL('./pty-host.js', import.meta.url), [], {
    env: hostEnv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    // Not in the worker's process group: a terminal's ^C goes to the worker, which decides what stops.
    detached: true,
  });
  child.on('message', (raw: unknown) => {
    const msg = raw as HostMessage;
    const p = pending.get(msg.id);
    if (!p) return;
    if (msg.t === 'spawned') p.started(msg.pid);
    else if (msg.t === 'data') p.onOutput(msg.chunk);
    else if (msg.t === 'error') {
      pending.delete(msg.id);
      p.failed(new Error(msg.message));
    } else {
      pending.delete(msg.id);
      p.exited({ exitCode: msg.exitCode, signal: msg.signal, ...(msg.watchdog ? { watchdog: true } : {}) });
    }
  });
  child.on('exit', () => {
    // The host died (killed from outside): its ptys are closed and their sessions got SIGHUP.
    if (host === child) host = undefined;
    for (const [id, p] of pending) {
      pending.delete(id);
      p.failed(new PtyHostExited());
      p.exited({ exitCode: 128 + SIGHUP, signal: SIGHUP, hostExited: true });
    }
  });
  // The worker may exit while the host is idle; the host follows it on disconnect.
  child.unref();
  child.channel?.unref();
  // IPC keeps the order of messages: the environment arrives before the first spawn.
  const init: WorkerMessage = { t: 'init', env: hostEnv, ...(watchdogMs > 0 ? { watchdogMs } : {}) };
  child.send(init);
  host = child;
  if (watchdogMs > 0 && !pinger) {
    // From the event loop, so a worker that is stopped or hung stops pinging: that is the point.
    pinger = setInterval(
      () => {
        if (host?.connected) host.send({ t: 'ping' } satisfies WorkerMessage, () => {});
      },
      Math.max(50, Math.floor(watchdogMs / 4)),
    );
    pinger.unref();
  }
  return child;
}

/**
 * Starts the pty host ahead of the first task (a worker calls this as it starts): the host's own start-up
 * then costs no task anything, and is over before a task runs. `watchdog`: the deadline after which the
 * host kills the tasks of a worker that stopped answering (must be shorter than the takeover time).
 */
export function startPtyHost(env: Record<string, string>, watchdog = 0): void {
  watchdogMs = watchdog;
  ptyHost(env);
}

/** Starts argv[0] with argv[1..] in a new pty; rejects if it cannot be started. */
export function runInPty(argv: readonly string[], opts: PtyOptions): Promise<PtyProcess> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new Error('empty command line'));
  const id = nextId++;
  return new Promise<PtyProcess>((resolve, reject) => {
    let onExit!: (e: PtyExit) => void;
    const exited = new Promise<PtyExit>(r => (onExit = r));
    pending.set(id, {
      onOutput: opts.onOutput,
      started: pid => resolve({ pid, exited }),
      failed: reject,
      exited: onExit,
    });
    const h = ptyHost(opts.env);
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.env)) if (hostEnv[k] !== v) set[k] = v;
    const unset = Object.keys(hostEnv).filter(k => !(k in opts.env));
    const msg: WorkerMessage = {
      t: 'spawn',
      id,
      file,
      args,
      cwd: opts.cwd,
      env: set,
      unset,
      token: opts.token,
    };
    h.send(msg, err => {
      if (!err) return;
      pending.delete(id);
      reject(err);
    });
  });
}
