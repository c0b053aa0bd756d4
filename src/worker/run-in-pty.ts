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
  /** How the host ended ("was killed by SIGKILL", "exited with code 1"), with hostExited. */
  hostEnd?: string;
  /** The pty host's watchdog killed it: this worker had stopped answering (see pty-host.ts). */
  watchdog?: boolean;
}

/** The pty host died before it could start the command. */
export class PtyHostExited extends Error {
  constructor(readonly hostEnd: string) {
    super(`the worker's pty host ${hostEnd}`);
    this.name = 'PtyHostExited';
  }
}

/** The pty host refused the start: the request's deadline (the worker's lease) had passed. Nothing ran. */
export class SpawnExpired extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpawnExpired';
  }
}

export interface PtyOptions {
  cwd: string;
  env: Record<string, string>;
  /** Called with each chunk of what reaches the pty, as UTF-8 text. */
  onOutput: (chunk: string) => void;
  /** The task's JTM_TASK_TOKEN (the host finds its detached processes by it). */
  token: string;
  /** Epoch ms after which the host must not start the command (pty-protocol.ts); none: no limit. */
  deadline?: number;
}

interface Pending {
  onOutput: (chunk: string) => void;
  started: (pid: number) => void;
  failed: (err: Error) => void;
  exited: (e: PtyExit) => void;
}

const SIGHUP = 1;
let host: ChildProcess | undefined;
/**
 * The environment the current host was given with its `init` (requests carry only the differences), or
 * undefined while it has had none: a host forked early (forkPtyHost) waits for its worker's configuration.
 */
let hostEnv: Record<string, string> | undefined;
let nextId = 1;
/** The watchdog deadline given to the host (0: none), and the ping timer that keeps it from firing. */
let watchdogMs = 0;
let pinger: NodeJS.Timeout | undefined;
/** When the current host last answered a ping, and how many checks in a row found it silent. */
let lastPong = 0;
let silentChecks = 0;
/** Set when this process killed its host for not answering: how its tasks' ends are explained. */
let killedSilentHost: { child: ChildProcess; silentMs: number } | undefined;
const pending = new Map<number, Pending>();

/** Variables that name one task (JTM_TASK_TOKEN finds a task's processes): never in the host's own. */
const withoutTaskIdentity = (env: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('JTM_TASK_')));

/**
 * Where bin/run.js leaves the pty host it forked before anything else loaded (a `jtm worker` run from the
 * bundle): the same process and options as forkHost's, with no environment of its own (the host reads none;
 * its tasks' comes with `init`). Taken once.
 */
const EARLY_HOST = Symbol.for('jtm.earlyPtyHost');

function adoptEarlyHost(): ChildProcess | undefined {
  const slot = globalThis as { [EARLY_HOST]?: ChildProcess };
  const child = slot[EARLY_HOST];
  delete slot[EARLY_HOST];
  return child?.connected ? child : undefined;
}

/**
 * A pty host with `env` as its own environment (or the one bin/run.js forked early); its tasks' environment
 * comes with `init`.
 */
function forkHost(env: Record<string, string>): ChildProcess {
  // The host's own environment must not carry one task's identity (a child between fork and exec still shows
  // the host's environment).
  const child =
    adoptEarlyHost() ??
    fork(new URL('./pty-host.js', import.meta.url), [], {
      env: withoutTaskIdentity(env),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Not in the worker's process group: a terminal's ^C goes to the worker, which decides what stops.
      detached: true,
    });
  child.on('message', (raw: unknown) => {
    const msg = raw as HostMessage;
    if (msg.t === 'pong') {
      if (child === host) lastPong = Date.now();
      return;
    }
    const p = pending.get(msg.id);
    if (!p) return;
    if (msg.t === 'spawned') p.started(msg.pid);
    else if (msg.t === 'data') p.onOutput(msg.chunk);
    else if (msg.t === 'error') {
      pending.delete(msg.id);
      p.failed(msg.expired ? new SpawnExpired(msg.message) : new Error(msg.message));
    } else {
      pending.delete(msg.id);
      p.exited({ exitCode: msg.exitCode, signal: msg.signal, ...(msg.watchdog ? { watchdog: true } : {}) });
    }
  });
  child.on('exit', (code, signal) => {
    // The host died (killed from outside, by a task, by the OOM killer): its ptys are closed and their
    // sessions got SIGHUP.
    if (host === child) host = undefined;
    const hostEnd =
      killedSilentHost?.child === child
        ? `stopped answering (no reply to pings for ${killedSilentHost.silentMs} ms) and was killed`
        : signal
          ? `was killed by ${signal}`
          : `exited with code ${code ?? '?'}`;
    for (const [id, p] of pending) {
      pending.delete(id);
      p.failed(new PtyHostExited(hostEnd));
      p.exited({ exitCode: 128 + SIGHUP, signal: SIGHUP, hostExited: true, hostEnd });
    }
  });
  // The worker may exit while the host is idle (or before it was ever used): the host follows it on disconnect.
  child.unref();
  child.channel?.unref();
  host = child;
  hostEnv = undefined;
  lastPong = Date.now();
  silentChecks = 0;
  return child;
}

/**
 * The pty host of this process, started on first use (and again if it ever dies), given `env` once; with the
 * environment it was given (what requests are told the differences from).
 */
function ptyHost(env: Record<string, string>): { child: ChildProcess; base: Record<string, string> } {
  const child = host && host.connected ? host : forkHost(env);
  if (hostEnv !== undefined) return { child, base: hostEnv };
  const base = withoutTaskIdentity(env);
  hostEnv = base;
  // IPC keeps the order of messages: the environment arrives before the first spawn.
  const init: WorkerMessage = { t: 'init', env: hostEnv, ...(watchdogMs > 0 ? { watchdogMs } : {}) };
  child.send(init);
  if (watchdogMs > 0 && !pinger) {
    // From the event loop, so a worker that is stopped or hung stops pinging: that is the point.
    pinger = setInterval(
      () => {
        if (!host?.connected) return;
        host.send({ t: 'ping' } satisfies WorkerMessage, () => {});
        checkHostAnswers(host);
      },
      Math.max(50, Math.floor(watchdogMs / 4)),
    );
    pinger.unref();
  }
  return { child, base };
}

/**
 * The watch the other way round: a host that stopped answering pings (SIGSTOP — a task's `kill -STOP $PPID` —,
 * a debugger, a blocked event loop) starts no task and reports no exit, so its tasks stayed `running` for ever
 * behind a worker that kept beating, and each new task claimed went into the same hole. Silent for longer than
 * the watchdog deadline, at two checks in a row (the second after pending messages are read: a worker resumed
 * from its own stop reads the pongs that waited), it is killed: its tasks then end as under a dead host
 * (given back, a retry spent) and the next task starts a new one.
 */
function checkHostAnswers(child: ChildProcess): void {
  const deadline = Math.max(2000, watchdogMs);
  if (Date.now() - lastPong <= deadline) {
    silentChecks = 0;
    return;
  }
  setImmediate(() => {
    const silentMs = Date.now() - lastPong;
    if (child !== host || silentMs <= deadline) return;
    if (++silentChecks < 2) return;
    killedSilentHost = { child, silentMs };
    try {
      child.kill('SIGKILL');
    } catch {
      // gone already: its exit reports the tasks
    }
  });
}

/**
 * Forks the pty host at once, before this process has loaded the rest of the worker or read its
 * configuration (`env`: the worker's environment without secrets, config.ts workerEnvironment): the host is a
 * Node process of its own, and a new Slurm allocation's first task waits for its start (benchmark 7). It
 * starts no task before startPtyHost gives it the tasks' environment. A process that then exits without
 * running a worker (a bad flag) leaves nothing behind: the host follows it on disconnect.
 */
export function forkPtyHost(env: Record<string, string>): void {
  if (!host?.connected) forkHost(env);
}

/**
 * Starts the pty host ahead of the first task (a worker calls this as it starts), or gives the one forked
 * early its tasks' environment: the host's own start-up then costs no task anything, and is over before a
 * task runs. `watchdog`: the deadline after which the host kills the tasks of a worker that stopped
 * answering (must be shorter than the takeover time).
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
    const { child: h, base } = ptyHost(opts.env);
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.env)) if (base[k] !== v) set[k] = v;
    const unset = Object.keys(base).filter(k => !(k in opts.env));
    const msg: WorkerMessage = {
      t: 'spawn',
      id,
      file,
      args,
      cwd: opts.cwd,
      env: set,
      unset,
      token: opts.token,
      ...(opts.deadline !== undefined ? { deadline: opts.deadline } : {}),
    };
    h.send(msg, err => {
      if (!err) return;
      pending.delete(id);
      reject(err);
    });
  });
}
