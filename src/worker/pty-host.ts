/**
 * The pty host: a small process that the worker starts once and that starts every task in a pseudo-terminal
 * (node-pty), on the worker's request over IPC. node-pty forks the calling process for each task, and a fork
 * costs in proportion to the forking process's memory: forking this small host instead of the worker (which
 * holds BullMQ, ioredis, pino, …) makes a task start several times cheaper and keeps it off the worker's
 * event loop. The only module that imports node-pty.
 *
 * It is also the tasks' last guard: when the worker disappears (killed, even by SIGKILL alone) or stops
 * answering (SIGSTOP, a hung event loop: no `ping` within the watchdog deadline, which is shorter than the
 * time after which another worker takes the tasks over), it kills every task's whole tree — its process
 * group and any process carrying its JTM_TASK_TOKEN, detached ones included — so that a task taken over never
 * runs twice at once.
 */
import { createRequire } from 'node:module';
import { closeSync, constants, openSync, readdirSync, readFileSync } from 'node:fs';

import type * as NodePty from 'node-pty';

import { monotonicMs } from './monotonic.js';
import { readPids } from './cgroup.js';
import { findByToken } from './task-token.js';
import { readProc, type ProcInfo } from './proc-files.js';
import { signalAll } from './signal-procs.js';
import {
  CGROUP_PROCS_VAR,
  CLOSE_FDS_VAR,
  FILES_OPEN_MARK,
  PTY_TEXT_MAX,
  type HostMessage,
  type WorkerMessage,
} from './pty-protocol.js';

// Signals are the worker's to act on, never the host's: Slurm ending an allocation (scancel, walltime,
// preemption) SIGTERMs every process of the job step in no set order, and a host that died of it first would
// hang up on running tasks before the worker could give them back to the queue. USR1 (Slurm's early warning)
// would otherwise open Node's inspector. The host still leaves when the worker does (disconnect below).
// The others whose default action ends a process are a task's to send by mistake or malice (`kill -ALRM
// $PPID`): a host that died of one would hang up on every task it holds. Caught, not ignored, so a task's
// exec resets them to their defaults. Left out: SIGPROF (V8's profiler's), the faults (SEGV, BUS, FPE, ILL,
// ABRT: a real fault must end the host) and the real-time signals, which Node cannot name; a host that dies
// of one is a host death (its tasks are given back).
// Installed before node-pty is loaded, to keep the window at start-up short.
for (const sig of [
  'SIGTERM',
  'SIGINT',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGALRM',
  'SIGVTALRM',
  'SIGIO',
  'SIGPWR',
  'SIGXCPU',
  'SIGXFSZ',
  'SIGSTKFLT',
  'SIGSYS',
  'SIGTRAP',
] as const)
  process.on(sig, () => {});

// Required, not imported: an ES import of this CommonJS package first runs Node's export lexer over it, part
// of the host's start that a new Slurm allocation's first task waits for. No message is handled meanwhile.
const { spawn: ptySpawn } = createRequire(import.meta.url)('node-pty') as typeof NodePty;

/** The tasks' common environment (the worker's `init` message); each request brings only what differs. */
let base: Record<string, string> = {};

interface Task {
  pid: number;
  /** The root's start time (/proc), read as it was started: what tells it from a process given its pid later. */
  start: number | undefined;
  token: string;
  /** The task's cgroup.procs files (cgroup accounting): what it detached with a new session and no token is there. */
  cgroupProcs: string[];
  /** Killed by the watchdog: its exit is reported as such. */
  watchdog: boolean;
  /** The pty's master side (not close-on-exec: every task started while this one lives must close it). */
  master: number | undefined;
  /** This host's descriptor on the pty's slave side, held until the task's root process has exited. */
  slave: number | undefined;
  /** What came on the pty before FILES_OPEN_MARK (capped), and whether the mark came. */
  text: string;
  filesOpen: boolean;
}
const tasks = new Map<number, Task>();

/**
 * The descriptors above 2 that this host inherited without close-on-exec (from whoever started the worker:
 * a shell, slurmstepd): node-pty's fork would hand them to every task. Node's own descriptors, and the slave
 * sides this host opens, are close-on-exec; the pty masters (glibc's openpty) are not, and are added per task.
 */
const O_CLOEXEC = 0o2000000; // Linux's value (the flags in /proc/self/fdinfo are octal); not in fs.constants
const inheritedFds = ((): number[] => {
  const fds: number[] = [];
  try {
    for (const name of readdirSync('/proc/self/fd')) {
      const fd = Number(name);
      if (!(fd > 2)) continue;
      try {
        const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'latin1'))?.[1];
        if (flags !== undefined && (parseInt(flags, 8) & O_CLOEXEC) === 0) fds.push(fd);
      } catch {
        // the directory's own descriptor, gone by now
      }
    }
  } catch {
    // no /proc: nothing known to close
  }
  return fds;
})();

/** The descriptors a new task must close: inherited ones and the other running tasks' pty masters. */
function descriptorsToClose(): string {
  const fds = [...inheritedFds];
  for (const t of tasks.values()) if (t.master !== undefined) fds.push(t.master);
  return fds.join(' ');
}

/** Whether a child of this host has exited (a zombie not yet reaped by node-pty's thread, or gone). */
function hasExited(pid: number): boolean {
  const state = readProc(pid)?.state;
  return state === undefined || state === 'Z';
}

/**
 * Lets the pty go: with no descriptor left on its slave side, node-pty reads the rest of its output, sees it
 * close and reports the exit (it waits for that before it reports an exit it already knows of).
 */
function releaseSlave(t: Task): void {
  if (t.slave === undefined) return;
  const fd = t.slave;
  t.slave = undefined;
  try {
    closeSync(fd);
  } catch {
    // already closed
  }
}

// A task's root process exited (SIGCHLD: this host's only children are the tasks' roots): its pty may go.
process.on('SIGCHLD', () => {
  for (const t of tasks.values()) if (t.slave !== undefined && hasExited(t.pid)) releaseSlave(t);
});

function taskEnv(set: Record<string, string>, unset: string[]): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...base, ...set };
  for (const k of unset) delete env[k];
  return env;
}

/**
 * A message to the worker. With a callback, a write that fails because the worker has just gone (EPIPE: the
 * channel still looked connected) is handed to it instead of being thrown as an unhandled 'error' event, which
 * crashed the host with a stack trace on the worker's stderr; the 'disconnect' handler below ends the host.
 */
function send(msg: HostMessage): void {
  if (process.connected) process.send?.(msg, undefined, {}, () => {});
}

let lastPing = monotonicMs();

process.on('message', (raw: unknown) => {
  const msg = raw as WorkerMessage;
  // Any message is word from the worker: a worker that started this host early, then spent longer than the
  // deadline loading its modules (no pings meanwhile), must not have its first task killed on arrival.
  lastPing = monotonicMs();
  if (msg.t === 'ping') {
    send({ t: 'pong' });
    return;
  }
  if (msg.t === 'init') {
    base = msg.env;
    if (msg.watchdogMs !== undefined && msg.watchdogMs > 0) startWatchdog(msg.watchdogMs);
    return;
  }
  spawnTask(msg);
});

/** What node-pty 1.1's UnixTerminal has beyond its typings: the master's descriptor and the slave's path. */
interface UnixPty {
  fd?: number;
  ptsName?: string;
}

function spawnTask(msg: Extract<WorkerMessage, { t: 'spawn' }>): void {
  // Checked here, at the fork, not only in the worker: a worker stopped after its check (or a whole tree
  // frozen and resumed) would otherwise start a copy beside the one of the worker that took the task over.
  if (msg.deadline !== undefined && monotonicMs() >= msg.deadline) {
    send({
      t: 'error',
      id: msg.id,
      message: `start refused: ${monotonicMs() - msg.deadline} ms past the worker's lease`,
      expired: true,
    });
    return;
  }
  let pty;
  let slave: number | undefined;
  try {
    const env = taskEnv(msg.env, msg.unset);
    env[CLOSE_FDS_VAR] = descriptorsToClose();
    pty = ptySpawn(msg.file, msg.args, {
      name: 'xterm',
      cols: 200,
      rows: 50,
      cwd: msg.cwd,
      env,
      encoding: 'utf8',
    });
    // Opened before this tick ends, so before the host could read a hang-up: the task's shell redirects all of
    // 0, 1, 2 and may exec the command, so it keeps no descriptor on the pty itself, and with none left node-pty
    // would close the master and the kernel would hang up on the task (SIGHUP). O_NOCTTY: the host (a session
    // leader) must not take the task's terminal as its own; Node opens it close-on-exec.
    const { ptsName } = pty as unknown as UnixPty;
    if (ptsName === undefined) throw new Error('node-pty gave no slave path (ptsName)');
    slave = openSync(ptsName, constants.O_RDWR | constants.O_NOCTTY);
  } catch (err) {
    if (pty) pty.kill('SIGKILL');
    send({ t: 'error', id: msg.id, message: (err as Error).message });
    return;
  }
  const task: Task = {
    pid: pty.pid,
    start: readProc(pty.pid)?.start,
    token: msg.token,
    cgroupProcs: (msg.env[CGROUP_PROCS_VAR] ?? '').split(' ').filter(Boolean),
    watchdog: false,
    master: (pty as unknown as UnixPty).fd,
    slave,
    text: '',
    filesOpen: false,
  };
  // A root that has exited already is seen by the SIGCHLD handler, which runs after this.
  tasks.set(msg.id, task);
  send({
    t: 'spawned',
    id: msg.id,
    pid: pty.pid,
    ...(task.start !== undefined ? { start: task.start } : {}),
  });
  // Only the text before the mark matters to the worker (the reason of a start that failed), and only at the exit:
  // kept here and sent with it, one message fewer per task (a message per chunk before, each a write and a wake-up
  // of the worker). Read to the end all the same: a pty nobody reads blocks the task's writes to it.
  pty.onData(chunk => {
    if (task.filesOpen) return;
    const mark = chunk.indexOf(FILES_OPEN_MARK);
    if (mark >= 0) task.filesOpen = true;
    task.text = (task.text + (mark >= 0 ? chunk.slice(0, mark) : chunk)).slice(-PTY_TEXT_MAX);
  });
  pty.onExit(e => {
    // node-pty reports the exit once the master is closed: no later task inherits it.
    releaseSlave(task);
    tasks.delete(msg.id);
    send({
      t: 'exit',
      id: msg.id,
      exitCode: e.exitCode,
      signal: e.signal ?? 0,
      ...(task.watchdog ? { watchdog: true } : {}),
      ...(task.filesOpen ? { filesOpen: true } : {}),
      ...(task.text ? { text: task.text } : {}),
    });
  });
}

/** SIGKILL to every task's process group and every process carrying one of their tokens, a few rounds. */
function killAllTasks(): void {
  for (let round = 0; round < 3; round++) {
    for (const t of tasks.values()) {
      // The task's group keeps its root's pid as long as any member lives; once none does, the pid may be
      // handed out again, to the leader of someone else's group (another task's root), which is not signalled.
      const holder = readProc(t.pid);
      if (!holder || holder.start === t.start) {
        try {
          process.kill(-t.pid, 'SIGKILL');
        } catch {
          // group gone
        }
      }
      signalAll(findByToken(t.token), 'SIGKILL');
      // A child that left the session and cleared its environment (`setsid env -i …`, a daemon) has neither the
      // group nor the token, and ran on beside the re-run elsewhere (adversary 17 R1): its cgroup still holds it.
      for (const file of t.cgroupProcs) signalAll(listed(readPids(file) ?? []), 'SIGKILL');
    }
  }
}

/** The processes of `pids` still alive, as listed now (this host never among them). */
function listed(pids: readonly number[]): ProcInfo[] {
  return pids.flatMap(pid => (pid === process.pid ? [] : (readProc(pid) ?? [])));
}

function startWatchdog(deadlineMs: number): void {
  const check = (): void => {
    if (monotonicMs() - lastPing <= deadlineMs) return;
    // The host itself may have been starved (timers run before pending messages are read): let the poll
    // phase read any ping that is waiting, then decide.
    setImmediate(() => {
      if (monotonicMs() - lastPing <= deadlineMs || tasks.size === 0) return;
      process.stderr.write(
        `${JSON.stringify({ level: 50, time: Date.now(), msg: `pty host: no word from the worker for ${monotonicMs() - lastPing} ms: killing its ${tasks.size} task${tasks.size === 1 ? '' : 's'}` })}\n`,
      );
      for (const t of tasks.values()) t.watchdog = true;
      killAllTasks();
    });
  };
  setInterval(check, Math.max(50, Math.min(250, Math.floor(deadlineMs / 4))));
}

// The worker is gone (or closed the channel): kill its tasks' trees (their ptys would hang up with us, but a
// detached or SIGHUP-proof process would not notice), then leave.
process.on('disconnect', () => {
  killAllTasks();
  process.exit(0);
});
