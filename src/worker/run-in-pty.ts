import { fork, type ChildProcess } from 'node:child_process';

import { monotonicMs } from './monotonic.js';
import { PTY_HOST_EXEC_ARGV } from './pty-host-argv.js';
import type { HostMessage, WorkerMessage } from './pty-protocol.js';

/** A command in a pseudo-terminal, in its own session and process group (started by the pty host). */
export interface PtyProcess {
  readonly pid: number;
  /** The root's start time as its host read it at the fork (undefined: it had exited already). */
  readonly start?: number;
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
  /** With hostExited: how many tasks the host held when it died (this one included). */
  hostTasks?: number;
  /** The pty host's watchdog killed it: this worker had stopped answering (see pty-host.ts). */
  watchdog?: boolean;
  /** FILES_OPEN_MARK came on the pty (pty-protocol.ts): the output files were open. */
  filesOpen?: boolean;
  /** What came on the pty before the mark (the wrapper's or bash's message when a start failed), if anything. */
  ptyText?: string;
}

/** The pty host died before it could start the command. */
export class PtyHostExited extends Error {
  /** hostTasks: how many tasks the host held when it died (this one included). */
  constructor(
    readonly hostEnd: string,
    readonly hostTasks = 1,
  ) {
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
  /** The task's JTM_TASK_TOKEN (the host finds its detached processes by it). */
  token: string;
  /**
   * The time (monotonic clock) after which the host must not start the command (pty-protocol.ts), read when the
   * request is sent; none: no limit.
   */
  deadline?: () => number;
}

interface Pending {
  started: (pid: number, start: number | undefined) => void;
  failed: (err: Error) => void;
  exited: (e: PtyExit) => void;
}

const SIGHUP = 1;

/**
 * One pty host and what this process knows of it: the shared host that runs the worker's tasks, or a host
 * of a single task's own (runInPty's `ownHost`).
 */
class HostLink {
  /**
   * The environment the host was given with its `init` (requests carry only the differences), or undefined
   * while it has had none: a host forked early (forkPtyHost) waits for its worker's configuration.
   */
  env: Record<string, string> | undefined;
  readonly pending = new Map<number, Pending>();
  /** When the host last answered a ping, and how many checks in a row found it silent. */
  lastPong = monotonicMs();
  silentChecks = 0;
  /** Whether it has answered once: a host still starting (Node, node-pty; slow on a cold node) is not silent. */
  answered = false;
  /** The worker's shared host (not one started for a single task). */
  isShared = false;
  /** Set when this process killed the host for not answering (ms silent): how its tasks' ends are explained. */
  killedSilentMs: number | undefined;
  /**
   * Requests held until the host first answers (a host still loading Node and node-pty reads nothing): a start
   * request's deadline is read as it is sent, not before the host's start-up (on a loaded node a host of a
   * task's own took longer than the worker's lease margin to start, and its task was given back as though the
   * lease had lapsed, though the worker beat all along).
   */
  private held: (() => void)[] | undefined = [];

  constructor(readonly child: ChildProcess) {
    child.on('message', (raw: unknown) => this.onMessage(raw as HostMessage));
    child.on('exit', (code, signal) => this.onExit(code, signal));
    // A host that closed its channel before it ever answered, and whose exit goes unheard, would hold the requests
    // waiting for that answer for good: once its exit had time to be heard, the close counts as one.
    child.on('disconnect', () => {
      if (this.answered) return;
      setTimeout(() => this.onExit(child.exitCode, child.signalCode), 1000).unref();
    });
    // Not started at all (EAGAIN at the user's process limit, EMFILE): without a listener, the worker crashed.
    child.on('error', err => this.onExit(null, null, `could not be started (${err.message})`));
    // The worker may exit while the host is idle (or before it was ever used): the host follows it on disconnect.
    child.unref();
    child.channel?.unref();
    links.add(this);
  }

  private onMessage(msg: HostMessage): void {
    if (msg.t === 'pong') {
      this.lastPong = monotonicMs();
      this.answered = true;
      const held = this.held;
      this.held = undefined;
      for (const send of held ?? []) send();
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    if (msg.t === 'spawned') p.started(msg.pid, msg.start);
    else if (msg.t === 'error') {
      this.pending.delete(msg.id);
      p.failed(msg.expired ? new SpawnExpired(msg.message) : new Error(msg.message));
    } else {
      this.pending.delete(msg.id);
      p.exited({
        exitCode: msg.exitCode,
        signal: msg.signal,
        ...(msg.watchdog ? { watchdog: true } : {}),
        ...(msg.filesOpen ? { filesOpen: true } : {}),
        ...(msg.text ? { ptyText: msg.text } : {}),
      });
    }
  }

  /**
   * The host died (killed from outside, by a task, by the OOM killer): its ptys are closed and their sessions
   * got SIGHUP. Each of its tasks learns how many tasks the host held (lease-losses.ts: a death among several
   * tasks is not charged to any one of them).
   */
  private onExit(code: number | null, signal: NodeJS.Signals | null, failure?: string): void {
    // Once: a host that failed may still report an exit.
    if (!links.delete(this)) return;
    // By the link's own mark: the shared slot may already hold its replacement (a host disconnected before its
    // exit was heard is replaced at the next task), and this end must still be said.
    const wasShared = this.isShared;
    if (shared === this) shared = undefined;
    const hostEnd =
      failure ??
      (this.killedSilentMs !== undefined
        ? `stopped answering (no reply to pings for ${this.killedSilentMs} ms) and was killed`
        : signal
          ? `was killed by ${signal}`
          : `exited with code ${code ?? '?'}`);
    const hostTasks = this.pending.size;
    // The shared host's end, said by the worker (a host of a task's own ends with it: that task reports it).
    if (wasShared) sharedHostEnded?.({ pid: this.child.pid, end: hostEnd, tasks: hostTasks });
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.failed(new PtyHostExited(hostEnd, hostTasks));
      p.exited({ exitCode: 128 + SIGHUP, signal: SIGHUP, hostExited: true, hostEnd, hostTasks });
    }
  }

  /** Gives the host its tasks' common environment (once); with the environment it was given. */
  init(env: Record<string, string>): Record<string, string> {
    if (this.env !== undefined) return this.env;
    const base = withoutTaskIdentity(env);
    this.env = base;
    // IPC keeps the order of messages: the environment arrives before the first spawn. The ping's answer says
    // the host has started (whether or not the watchdog pings it later): held requests go then.
    const init: WorkerMessage = { t: 'init', env: base, ...(watchdogMs > 0 ? { watchdogMs } : {}) };
    this.child.send(init, () => {});
    this.child.send({ t: 'ping' } satisfies WorkerMessage, () => {});
    ensurePinger();
    return base;
  }

  /** Runs `send` now if the host has answered once, else when it first does (in order). */
  whenAnswered(send: () => void): void {
    if (this.held) this.held.push(send);
    else send();
  }

  /**
   * The watch the other way round: a host that stopped answering pings (SIGSTOP — a task's `kill -STOP
   * $PPID` —, a debugger, a blocked event loop) starts no task and reports no exit, so its tasks stayed
   * `running` for ever behind a worker that kept beating, and each new task claimed went into the same hole.
   * Silent for longer than the watchdog deadline, at two checks in a row (the second after pending messages
   * are read: a worker resumed from its own stop reads the pongs that waited), it is killed: its tasks then end
   * as under a dead host and the next task starts a new one.
   */
  checkAnswers(): void {
    const deadline = this.answered ? Math.max(2000, watchdogMs) : Math.max(START_ALLOWANCE_MS, watchdogMs);
    if (monotonicMs() - this.lastPong <= deadline) {
      this.silentChecks = 0;
      return;
    }
    setImmediate(() => {
      const silentMs = monotonicMs() - this.lastPong;
      if (!links.has(this) || silentMs <= deadline) return;
      if (++this.silentChecks < 2) return;
      this.killedSilentMs = silentMs;
      try {
        this.child.kill('SIGKILL');
      } catch {
        // gone already: its exit reports the tasks
      }
    });
  }
}

/** How long a host that has not answered yet may take to start before it counts as silent. */
const START_ALLOWANCE_MS = 30_000;

/** Every host this process has and that has not exited; the shared one among them. */
const links = new Set<HostLink>();
let shared: HostLink | undefined;
let nextId = 1;
/** The watchdog deadline given to the hosts (0: none), and the ping timer that keeps it from firing. */
let watchdogMs = 0;
let pinger: NodeJS.Timeout | undefined;

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
  // One that has exited already (its exit event may have fired before anyone listened) is not adopted.
  return child?.connected && child.exitCode === null && child.signalCode === null ? child : undefined;
}

/**
 * A pty host with `env` as its own environment (or, for the shared host, the one bin/run.js forked early);
 * its tasks' environment comes with `init`.
 */
function forkHost(env: Record<string, string>, early: boolean): HostLink {
  // The host's own environment must not carry one task's identity (a child between fork and exec still shows
  // the host's environment).
  const child =
    (early ? adoptEarlyHost() : undefined) ??
    fork(new URL('./pty-host.js', import.meta.url), [], {
      execArgv: [...process.execArgv, ...PTY_HOST_EXEC_ARGV],
      env: withoutTaskIdentity(env),
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      // Not in the worker's process group: a terminal's ^C goes to the worker, which decides what stops.
      detached: true,
    });
  return new HostLink(child);
}

/** The shared pty host, started on first use (and again if it ever dies). */
function sharedHost(env: Record<string, string>): HostLink {
  if (!shared?.child.connected) {
    shared = forkHost(env, true);
    shared.isShared = true;
  }
  return shared;
}

/** Pings every host, from the event loop, so a worker that is stopped or hung stops pinging: that is the point. */
function ensurePinger(): void {
  if (watchdogMs <= 0 || pinger) return;
  pinger = setInterval(
    () => {
      for (const link of links) {
        if (!link.child.connected || link.env === undefined) continue;
        link.child.send({ t: 'ping' } satisfies WorkerMessage, () => {});
        link.checkAnswers();
      }
    },
    Math.max(50, Math.floor(watchdogMs / 4)),
  );
  pinger.unref();
}

/** The shared pty host's end: which host, how (`was killed by SIGKILL`), and how many tasks it held. */
export interface PtyHostEnd {
  pid: number | undefined;
  end: string;
  tasks: number;
}

let sharedHostEnded: ((e: PtyHostEnd) => void) | undefined;

/**
 * Tells `listener` when the shared pty host ends (undefined: no longer). An idle host killed from outside was
 * replaced at the next task without a word in the worker's log (adversary 19).
 */
export function onSharedPtyHostEnd(listener: ((e: PtyHostEnd) => void) | undefined): void {
  sharedHostEnded = listener;
}

/**
 * Forks the pty host at once, before this process has loaded the rest of the worker or read its
 * configuration (`env`: the worker's environment without secrets, config.ts workerEnvironment): the host is a
 * Node process of its own, and a new Slurm allocation's first task waits for its start (benchmark 7). It
 * starts no task before startPtyHost gives it the tasks' environment. A process that then exits without
 * running a worker (a bad flag) leaves nothing behind: the host follows it on disconnect.
 */
export function forkPtyHost(env: Record<string, string>): void {
  sharedHost(env);
}

/**
 * Starts the pty host ahead of the first task (a worker calls this as it starts), or gives the one forked
 * early its tasks' environment: the host's own start-up then costs no task anything, and is over before a
 * task runs. `watchdog`: the deadline after which the host kills the tasks of a worker that stopped
 * answering (must be shorter than the takeover time).
 */
export function startPtyHost(env: Record<string, string>, watchdog = 0): void {
  watchdogMs = watchdog;
  sharedHost(env).init(env);
}

/**
 * Starts argv[0] with argv[1..] in a new pty; rejects if it cannot be started. With `ownHost`, in a pty host
 * of its own, started for it and ended after it (a task suspected of having killed a shared host runs where
 * it can harm no other task: lease-losses.ts).
 */
export function runInPty(
  argv: readonly string[],
  opts: PtyOptions & { ownHost?: boolean },
): Promise<PtyProcess> {
  const [file, ...args] = argv;
  if (!file) return Promise.reject(new Error('empty command line'));
  const id = nextId++;
  const link = opts.ownHost ? forkHost(opts.env, false) : sharedHost(opts.env);
  // A host of its own leaves once its task has ended (its 'disconnect' handler kills whatever is left).
  const release = opts.ownHost ? () => link.child.connected && link.child.disconnect() : () => {};
  return new Promise<PtyProcess>((resolve, reject) => {
    let onExit!: (e: PtyExit) => void;
    const exited = new Promise<PtyExit>(r => (onExit = r));
    link.pending.set(id, {
      started: (pid, start) => resolve({ pid, ...(start !== undefined ? { start } : {}), exited }),
      failed: err => {
        release();
        reject(err);
      },
      exited: e => {
        release();
        onExit(e);
      },
    });
    const base = link.init(opts.env);
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(opts.env)) if (base[k] !== v) set[k] = v;
    const unset = Object.keys(base).filter(k => !(k in opts.env));
    link.whenAnswered(() => {
      // The host has exited meanwhile: its exit has failed the request already.
      if (!link.pending.has(id)) return;
      const msg: WorkerMessage = {
        t: 'spawn',
        id,
        file,
        args,
        cwd: opts.cwd,
        env: set,
        unset,
        token: opts.token,
        ...(opts.deadline !== undefined ? { deadline: opts.deadline() } : {}),
      };
      link.child.send(msg, err => {
        if (!err) return;
        link.pending.delete(id);
        release();
        reject(err);
      });
    });
  });
}
