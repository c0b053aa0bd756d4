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

import type * as NodePty from 'node-pty';

import { findByToken, signalAll } from './process-tree.js';
import type { HostMessage, WorkerMessage } from './pty-protocol.js';

// Signals are the worker's to act on, never the host's: Slurm ending an allocation (scancel, walltime,
// preemption) SIGTERMs every process of the job step in no set order, and a host that died of it first would
// hang up on running tasks before the worker could give them back to the queue. USR1 (Slurm's early warning)
// would otherwise open Node's inspector. The host still leaves when the worker does (disconnect below).
// Installed before node-pty is loaded, to keep the window at start-up short.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => {});

// Required, not imported: an ES import of this CommonJS package first runs Node's export lexer over it, part
// of the host's start that a new Slurm allocation's first task waits for. No message is handled meanwhile.
const { spawn: ptySpawn } = createRequire(import.meta.url)('node-pty') as typeof NodePty;

/** The tasks' common environment (the worker's `init` message); each request brings only what differs. */
let base: Record<string, string> = {};

interface Task {
  pid: number;
  token: string;
  /** Killed by the watchdog: its exit is reported as such. */
  watchdog: boolean;
}
const tasks = new Map<number, Task>();

function taskEnv(set: Record<string, string>, unset: string[]): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...base, ...set };
  for (const k of unset) delete env[k];
  return env;
}

function send(msg: HostMessage): void {
  if (process.connected) process.send?.(msg);
}

let lastPing = Date.now();

process.on('message', (raw: unknown) => {
  const msg = raw as WorkerMessage;
  // Any message is word from the worker: a worker that started this host early, then spent longer than the
  // deadline loading its modules (no pings meanwhile), must not have its first task killed on arrival.
  lastPing = Date.now();
  if (msg.t === 'ping') return;
  if (msg.t === 'init') {
    base = msg.env;
    if (msg.watchdogMs !== undefined && msg.watchdogMs > 0) startWatchdog(msg.watchdogMs);
    return;
  }
  spawnTask(msg);
});

function spawnTask(msg: Extract<WorkerMessage, { t: 'spawn' }>): void {
  let pty;
  try {
    pty = ptySpawn(msg.file, msg.args, {
      name: 'xterm',
      cols: 200,
      rows: 50,
      cwd: msg.cwd,
      env: taskEnv(msg.env, msg.unset),
      encoding: 'utf8',
    });
  } catch (err) {
    send({ t: 'error', id: msg.id, message: (err as Error).message });
    return;
  }
  const task: Task = { pid: pty.pid, token: msg.token, watchdog: false };
  tasks.set(msg.id, task);
  send({ t: 'spawned', id: msg.id, pid: pty.pid });
  pty.onData(chunk => send({ t: 'data', id: msg.id, chunk }));
  pty.onExit(e => {
    tasks.delete(msg.id);
    send({
      t: 'exit',
      id: msg.id,
      exitCode: e.exitCode,
      signal: e.signal ?? 0,
      ...(task.watchdog ? { watchdog: true } : {}),
    });
  });
}

/** SIGKILL to every task's process group and every process carrying one of their tokens, a few rounds. */
function killAllTasks(): void {
  for (let round = 0; round < 3; round++) {
    for (const t of tasks.values()) {
      try {
        process.kill(-t.pid, 'SIGKILL');
      } catch {
        // group gone
      }
      signalAll(findByToken(t.token), 'SIGKILL');
    }
  }
}

function startWatchdog(deadlineMs: number): void {
  const check = (): void => {
    if (Date.now() - lastPing <= deadlineMs) return;
    // The host itself may have been starved (timers run before pending messages are read): let the poll
    // phase read any ping that is waiting, then decide.
    setImmediate(() => {
      if (Date.now() - lastPing <= deadlineMs || tasks.size === 0) return;
      process.stderr.write(
        `${JSON.stringify({ level: 50, time: Date.now(), msg: `pty host: no word from the worker for ${Date.now() - lastPing} ms: killing its ${tasks.size} tasks` })}\n`,
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
