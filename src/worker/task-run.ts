import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';

import type { Logger } from '../logger.js';
import type { TaskJobData } from '../tasks/job-data.js';
import { TaskStatus } from '../tasks/status.js';
import { checkOutputFiles } from './output-files.js';
import { findByToken, lowestDescendantPid, ProcessTree, signalAll, type ProcInfo } from './process-tree.js';
import type { SampleState } from './resource-sample.js';
import { PtyHostExited, runInPty } from './run-in-pty.js';

/** Why a task was stopped before it ended by itself. */
export type StopCause = 'kill' | 'timeout' | 'shutdown' | 'superseded' | 'outofresource';

/**
 * How a run ended. `final`: record this status. `requeue`: give the task back to its queue (worker shut
 * down). `abandon`: another worker owns the task now; record nothing.
 */
export type TaskOutcome =
  | {
      kind: 'final';
      status: number;
      exitCode?: number;
      reason: string;
      leftovers: number[];
      /** The worker's pty host died under the task: the worker's failure, perhaps its shutdown. */
      hostExited?: boolean;
    }
  | { kind: 'requeue'; reason: string; leftovers: number[] }
  | { kind: 'abandon'; reason: string; leftovers: number[] };

export interface TaskRunOptions {
  logDir: string;
  env: Record<string, string>;
  killGraceMs: number;
  logger: Logger;
  /** Output chunks, for the live output stream. */
  onOutput?: (chunk: string) => void;
  /** The command has started: its pid. */
  onStarted?: (pid: number) => void;
  /** The task's memory limit (accounting.ts): whether it was exceeded, and how to say so. */
  memory?: { overLimit(): boolean; limitReason(): string };
}

/*
 * The task's command runs as `bash -c "$2"` under a small wrapper that sends stderr to its file (the pty
 * carries stdout only) and gives the command no terminal input, so a command that reads stdin sees EOF
 * instead of hanging. The command is an argument, never part of the script text.
 * Resource accounting (accounting.ts): the wrapper first moves itself into the task's cgroup(s), named by
 * JTM_CGROUP_PROCS, so that everything the command starts is counted and limited there.
 */
const WRAPPER =
  'for __jtm_f in $JTM_CGROUP_PROCS; do echo $$ >"$__jtm_f"; done 2>/dev/null; ' +
  'unset JTM_CGROUP_PROCS __jtm_f; ' +
  'exec 2>>"$1" </dev/null; __jtm_command=$2; set --; eval "$__jtm_command"';

/** One execution of one task on this worker: its process tree, its files, its stop requests. */
export class TaskRun {
  readonly token = randomBytes(12).toString('hex');
  readonly startedAt = Date.now();
  pid = 0;
  tree: ProcessTree | undefined;
  /** Last resource sample state (kept by the sampler). */
  sampleState: SampleState | undefined;
  private stopCause: StopCause | undefined;
  private killing: Promise<number[]> | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly data: TaskJobData,
    private readonly opts: TaskRunOptions,
  ) {}

  get id(): number {
    return this.data.id;
  }

  get stoppedBy(): StopCause | undefined {
    return this.stopCause;
  }

  /** Asks the run to stop: kills the whole tree (TERM, then KILL after the grace period). Idempotent. */
  stop(cause: StopCause): void {
    if (this.stopCause) return;
    this.stopCause = cause;
    if (this.tree) this.killing = this.killTree(this.graceFor(cause));
  }

  async run(): Promise<TaskOutcome> {
    const cwd = this.data.cwd ?? process.cwd();
    const stdoutPath = this.data.stdout ?? join(this.opts.logDir, 'tasks', `${this.id}.out`);
    const stderrPath = this.data.stderr ?? join(this.opts.logDir, 'tasks', `${this.id}.err`);
    const cannotStart = checkDirectory(cwd);
    if (cannotStart) return { kind: 'final', status: TaskStatus.failed, reason: cannotStart, leftovers: [] };
    let stdoutFd: number;
    try {
      stdoutFd = openForAppend(stdoutPath);
      closeSync(openForAppend(stderrPath));
    } catch (err) {
      return {
        kind: 'final',
        status: TaskStatus.failed,
        reason: `cannot start: ${(err as Error).message}`,
        leftovers: [],
      };
    }
    try {
      return await this.execute(cwd, stdoutFd, stderrPath);
    } finally {
      closeSync(stdoutFd);
    }
  }

  private async execute(cwd: string, stdoutFd: number, stderrPath: string): Promise<TaskOutcome> {
    const env = { ...this.opts.env, PWD: cwd, JTM_TASK_ID: String(this.id), JTM_TASK_TOKEN: this.token };
    const newlines = new PtyNewlines();
    let pty;
    try {
      pty = await runInPty(['/bin/bash', '-c', WRAPPER, 'bash', stderrPath, this.data.command], {
        cwd,
        env,
        onOutput: raw => {
          const chunk = newlines.push(raw);
          if (chunk === '') return;
          writeSync(stdoutFd, chunk);
          this.opts.onOutput?.(chunk);
        },
      });
    } catch (err) {
      return {
        kind: 'final',
        status: TaskStatus.failed,
        reason: `cannot start: ${(err as Error).message}`,
        leftovers: [],
        hostExited: err instanceof PtyHostExited,
      };
    }
    this.pid = pty.pid;
    this.tree = new ProcessTree(pty.pid);
    this.opts.onStarted?.(pty.pid);
    if (this.stopCause) this.killing = this.killTree(this.graceFor(this.stopCause));
    if (this.data.timeout_ms) this.timer = setTimeout(() => this.stop('timeout'), this.data.timeout_ms);
    const { exitCode, signal, hostExited } = await pty.exited;
    clearTimeout(this.timer);
    // Over its memory limit: the kernel may have killed part of the tree, or all of it, before the watch saw it.
    if (!this.stopCause && this.opts.memory?.overLimit()) this.stop('outofresource');
    const tail = newlines.flush();
    if (tail !== '') {
      writeSync(stdoutFd, tail);
      this.opts.onOutput?.(tail);
    }
    // Whatever is left of the tree (background children, detached daemons) does not outlive the task.
    const killedByStop = this.killing ? await this.killing : [];
    const leftovers = this.stopCause ? [] : await this.killTree(Math.min(1000, this.opts.killGraceMs));
    if (leftovers.length > 0)
      this.opts.logger.warn({ task: this.id, leftovers }, 'killed processes the task left behind');
    const code = signal ? 128 + signal : exitCode;
    const outcome = await this.outcome(code, signal, leftovers, killedByStop, cwd, env);
    if (hostExited && outcome.kind === 'final' && outcome.status === TaskStatus.failed) {
      return { ...outcome, reason: `the worker's pty host exited (${outcome.reason})`, hostExited };
    }
    return outcome;
  }

  private async outcome(
    code: number,
    signal: number,
    leftovers: number[],
    killed: number[],
    cwd: string,
    env: Record<string, string>,
  ): Promise<TaskOutcome> {
    switch (this.stopCause) {
      case 'kill':
        return {
          kind: 'final',
          status: TaskStatus.terminated,
          exitCode: code,
          reason: `killed on request (${killed.length} processes)`,
          leftovers,
        };
      case 'timeout':
        return {
          kind: 'final',
          status: TaskStatus.timeout,
          exitCode: code,
          reason: `timed out after ${Math.round((this.data.timeout_ms ?? 0) / 1000)} s`,
          leftovers,
        };
      case 'outofresource':
        return {
          kind: 'final',
          status: TaskStatus.outofresource,
          exitCode: code,
          reason: this.opts.memory?.limitReason() ?? 'memory limit exceeded',
          leftovers,
        };
      case 'shutdown':
        return { kind: 'requeue', reason: 'worker shut down before the task ended', leftovers };
      case 'superseded':
        return { kind: 'abandon', reason: 'another worker owns the task', leftovers };
      default:
        break;
    }
    if (code === 0) {
      if (this.data.output_files) {
        const problems = await checkOutputFiles(this.data.output_files, {
          env,
          cwd,
          allowEmpty: this.data.allow_empty_outputs ?? false,
        });
        if (problems.length > 0) {
          return {
            kind: 'final',
            status: TaskStatus.outputerror,
            exitCode: 0,
            reason: `output files: ${problems.join('; ')}`,
            leftovers,
          };
        }
      }
      return { kind: 'final', status: TaskStatus.success, exitCode: 0, reason: 'exit code 0', leftovers };
    }
    const reason =
      code === 127
        ? 'command not found'
        : code === 126
          ? 'command not executable'
          : signal
            ? `killed by signal ${signal}`
            : `exit code ${code}`;
    return { kind: 'final', status: TaskStatus.failed, exitCode: code, reason, leftovers };
  }

  /** A task over its memory limit is killed at once: it only grows while it is given time. */
  private graceFor(cause: StopCause): number {
    return cause === 'outofresource' ? 0 : this.opts.killGraceMs;
  }

  /** Clears the timeout timer without waiting for anything (worker shutdown). */
  dispose(): void {
    clearTimeout(this.timer);
  }

  /** The live processes of the task: the remembered tree plus anything carrying its token. */
  liveProcesses(): ProcInfo[] {
    if (!this.tree) return [];
    const byPid = new Map<number, ProcInfo>();
    for (const p of this.tree.refresh()) byPid.set(p.pid, p);
    const since = lowestDescendantPid(this.pid, Date.now() - this.startedAt);
    const escaped = findByToken(this.token, since).filter(p => !byPid.has(p.pid));
    this.tree.adopt(escaped);
    for (const p of escaped) byPid.set(p.pid, p);
    return [...byPid.values()];
  }

  /** TERM to every process of the tree, KILL after `graceMs`; resolves with the pids it signalled once all are gone. */
  private async killTree(graceMs: number): Promise<number[]> {
    const signalled = new Set<number>();
    let procs = this.liveProcesses();
    if (procs.length === 0) return [];
    procs.forEach(p => signalled.add(p.pid));
    signalAll(procs, 'SIGTERM');
    const deadline = Date.now() + graceMs;
    while (Date.now() < deadline) {
      await sleep(50);
      procs = this.liveProcesses();
      if (procs.length === 0) return [...signalled];
      procs.forEach(p => signalled.add(p.pid));
      signalAll(procs, 'SIGTERM');
    }
    for (let round = 0; round < 100 && procs.length > 0; round++) {
      procs.forEach(p => signalled.add(p.pid));
      signalAll(procs, 'SIGKILL');
      await sleep(50);
      procs = this.liveProcesses();
    }
    if (procs.length > 0)
      this.opts.logger.error({ task: this.id, pids: procs.map(p => p.pid) }, 'processes survived SIGKILL');
    return [...signalled];
  }
}

function checkDirectory(dir: string): string | undefined {
  try {
    if (!statSync(dir).isDirectory()) return `cannot start: ${dir} is not a directory`;
  } catch {
    return `cannot start: working directory ${dir} does not exist`;
  }
  return undefined;
}

const madeDirs = new Set<string>();

function openForAppend(path: string): number {
  const dir = dirname(path);
  if (!madeDirs.has(dir)) {
    mkdirSync(dir, { recursive: true });
    madeDirs.add(dir);
  }
  try {
    return openSync(path, 'a');
  } catch (err) {
    // The directory may have been removed since; make it again once.
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    mkdirSync(dir, { recursive: true });
    return openSync(path, 'a');
  }
}

/**
 * A pty turns each \n the command writes into \r\n; this turns them back, keeping a lone \r (progress
 * bars). A \r at the end of a chunk is held until the next one shows whether a \n follows.
 */
export class PtyNewlines {
  private held = '';

  push(chunk: string): string {
    let text = this.held + chunk;
    this.held = '';
    if (text.endsWith('\r')) {
      this.held = '\r';
      text = text.slice(0, -1);
    }
    return text.replace(/\r\n/g, '\n');
  }

  flush(): string {
    const rest = this.held;
    this.held = '';
    return rest;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise(r => setTimeout(r, ms));
}
