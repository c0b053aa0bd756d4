/**
 * The pty host: a small process that the worker starts once and that starts every task in a pseudo-terminal
 * (node-pty), on the worker's request over IPC. node-pty forks the calling process for each task, and a fork
 * costs in proportion to the forking process's memory: forking this small host instead of the worker (which
 * holds BullMQ, ioredis, pino, …) makes a task start several times cheaper and keeps it off the worker's
 * event loop. The only module that imports node-pty. It exits with the worker: its ptys close, and the
 * tasks' sessions get SIGHUP, as they would if the worker had held the ptys itself.
 */
import type * as NodePty from 'node-pty';

import type { HostMessage, WorkerMessage } from './pty-protocol.js';

// Signals are the worker's to act on, never the host's: Slurm ending an allocation (scancel, walltime,
// preemption) SIGTERMs every process of the job step in no set order, and a host that died of it first would
// hang up on running tasks before the worker could give them back to the queue. USR1 (Slurm's early warning)
// would otherwise open Node's inspector. The host still leaves when the worker does (disconnect below).
// Installed before node-pty is loaded (a dynamic import), to keep the window at start-up short.
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2'] as const) process.on(sig, () => {});

const nodePty = import('node-pty');

/** The tasks' common environment (the worker's `init` message); each request brings only what differs. */
let base: Record<string, string> = {};

function taskEnv(set: Record<string, string>, unset: string[]): Record<string, string | undefined> {
  const env: Record<string, string | undefined> = { ...base, ...set };
  for (const k of unset) delete env[k];
  return env;
}

function send(msg: HostMessage): void {
  process.send?.(msg);
}

process.on('message', (raw: unknown) => {
  const msg = raw as WorkerMessage;
  if (msg.t === 'init') {
    base = msg.env;
    return;
  }
  // Requests wait for the module in the order they came (promise reactions run in order).
  void nodePty.then(({ spawn }) => spawnTask(spawn, msg));
});

function spawnTask(spawn: typeof NodePty.spawn, msg: Extract<WorkerMessage, { t: 'spawn' }>): void {
  let pty;
  try {
    pty = spawn(msg.file, msg.args, {
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
  send({ t: 'spawned', id: msg.id, pid: pty.pid });
  pty.onData(chunk => send({ t: 'data', id: msg.id, chunk }));
  pty.onExit(e => send({ t: 'exit', id: msg.id, exitCode: e.exitCode, signal: e.signal ?? 0 }));
}

// The worker is gone (or closed the channel): leave, taking the ptys with us.
process.on('disconnect', () => process.exit(0));
