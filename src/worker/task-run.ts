import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { formatSeconds, setLongTimeout, type LongTimeout } from '../durations.js';
import { permissionCode } from '../errors.js';
import { counted } from '../plural.js';
import { processUserName } from '../process-user.js';

import type { Logger } from '../logger.js';
import { TIMES_FILE_VAR } from './accounting.js';
import type { TaskJobData } from '../tasks/job-data.js';
import { TaskStatus } from '../tasks/status.js';
import { checkOutputFiles, expandVars, LOG_DIR, prepareOutput, type PreparedOutput } from './output-files.js';
import { ensureStillPrivate } from '../private-dir.js';
import { findByToken, PidWindow } from './task-token.js';
import { ProcessTree } from './process-tree.js';
import { readProc, type ProcInfo } from './proc-files.js';
import { terminateAll } from './signal-procs.js';
import type { SampleState } from './resource-sample.js';
import { monotonicMs } from './monotonic.js';
import { PtyHostExited, runInPty, SpawnExpired } from './run-in-pty.js';
import { taskArgv } from './task-argv.js';

/**
 * Why a task was stopped before it ended by itself. `fenced`: the worker could not renew its lease on Redis
 * and stops its runs before the lease can expire there (a takeover must never overlap a live copy).
 * `outofresource`: over its memory limit (accounting.ts).
 */
export type StopCause =
  'kill' | 'timeout' | 'shutdown' | 'superseded' | 'vanished' | 'fenced' | 'outofresource';

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
      /** With hostExited: how many tasks the host held when it died (this one included). */
      hostTasks?: number;
    }
  | {
      kind: 'requeue';
      reason: string;
      leftovers: number[];
      watchdog?: boolean;
      fenced?: true;
      /**
       * With fenced: how long Redis had not answered a beat while the worker itself kept running on time (an
       * outage of Redis or of the way to it, not a worker too late for its lease): the give-back is not counted
       * against the task (lease-losses.ts).
       */
      redisSilentMs?: number;
      /**
       * With fenced: the command was never started (the lease lapsed between the claim and the start): nothing ran,
       * so the give-back is counted apart from lost executions (lease-losses.ts, `unstarted_givebacks`).
       */
      unstarted?: true;
      /** Not started for want of the node's own resources (ptys, processes, descriptors): not the task's fault. */
      nodeShort?: true;
    }
  | { kind: 'abandon'; reason: string; leftovers: number[]; recordGone?: boolean };

export interface TaskRunOptions {
  logDir: string;
  env: Record<string, string>;
  killGraceMs: number;
  /** How long what the task left running as it exited may take to end by itself before it is killed. */
  leftoverGraceMs?: number;
  logger: Logger;
  /** The stdout file is ready (emptied for this attempt); `regular`: a regular file, which can be followed. */
  onOutputReady?: (path: string, regular: boolean) => void;
  /** The command has started: its pid. */
  onStarted?: (pid: number) => void;
  /**
   * The task's memory limit (accounting.ts): whether it was exceeded, and how to say so; and the processes
   * of its cgroup (undefined: no cgroup that holds the task).
   */
  memory?: {
    overLimit(end?: { failed: boolean }): boolean;
    limitReason(): string;
    memberPids?(): number[] | undefined;
    /** /proc mode: what the task's shell wrote as it exited (accounting.ts readShellExit), read once. */
    readShellExit?(): Promise<{ children: number[]; uptimeS: number } | undefined>;
    /** /proc mode: a last look at what the task left running, before it is killed (accounting.ts). */
    observeLeftovers?(procs: readonly ProcInfo[]): void;
    /** /proc mode: what to say of a pass of the limit learned only once the shell had ended (accounting.ts). */
    passedUnseen?(): string | undefined;
  };
  /** The run token start-task recorded for this execution (the worker claims the task before it makes the run). */
  token?: string;
  /**
   * Epoch ms after which the command must not start (the worker's lease, start-worker.ts), read right before
   * the start and sent with it to the pty host, which refuses a request it handles later. Past it, the run is
   * fenced without starting: another worker may own the task by the time it would run.
   */
  startDeadline?: () => number;
}

/** A start failure of the node's own resources: node-pty's forkpty (no pty left, no process), EAGAIN, EMFILE, … */
const NODE_SHORT =
  /forkpty|EAGAIN|EMFILE|ENFILE|ENOMEM|ENOSPC|Resource temporarily unavailable|Too many open files/;

/** One execution of one task on this worker: its process tree, its files, its stop requests. */
export class TaskRun {
  readonly token: string;
  /** Where the task's stdout goes (its own `stdout`, `$VARS` expanded, else `<log dir>/tasks/<id>.out`). */
  readonly stdoutPath: string;
  /** Where stderr goes: the task's `stderr`, or `<log dir>/tasks/<id>.err`. */
  readonly stderrPath: string;
  readonly startedAt = Date.now();
  pid = 0;
  /** The root is /proc mode's wrapper (task-exec.c wait_and_report), not a process of the task's own. */
  private rootIsWrapper = false;
  tree: ProcessTree | undefined;
  /** Last resource sample state (kept by the sampler). */
  sampleState: SampleState | undefined;
  private stopCause: StopCause | undefined;
  private stopGraceMs = 0;
  /** When the kill's grace ends (epoch ms): set as the kill begins, brought forward by a later stop with less. */
  private graceEnd = 0;
  /** Set by self-fencing when Redis, not the worker, was silent (run-fencing.ts): said on the fenced outcome. */
  redisSilentMs: number | undefined;
  /** Whether the last reconcile found the task's record missing (run-fencing.ts: stopped at the second in a row). */
  recordMissing = false;
  private killing: Promise<number[]> | undefined;
  /** Processes of the task this user could not signal (killTree). */
  private readonly unkillable = new Set<number>();
  private timer: LongTimeout | undefined;
  /** The pids handed out since just before the task was started: where its escaped processes can be. */
  private pids: PidWindow | undefined;
  private onStop!: () => void;
  /** Resolves at the first stop: what a run waiting to start (output-turns.ts) stops waiting for. */
  readonly stopRequested = new Promise<void>(r => (this.onStop = r));

  constructor(
    readonly data: TaskJobData,
    private readonly opts: TaskRunOptions,
  ) {
    this.token = opts.token ?? randomBytes(12).toString('hex');
    this.stdoutPath =
      data.stdout === undefined ? join(opts.logDir, 'tasks', `${data.id}.out`) : this.expand(data.stdout);
    this.stderrPath =
      data.stderr === undefined ? join(opts.logDir, 'tasks', `${data.id}.err`) : this.expand(data.stderr);
  }

  get id(): number {
    return this.data.id;
  }

  get stoppedBy(): StopCause | undefined {
    return this.stopCause;
  }

  /**
   * Asks the run to stop: kills the whole tree (TERM, then KILL after the grace period, by default the
   * worker's kill grace). Idempotent.
   */
  stop(cause: StopCause, graceMs = this.graceFor(cause)): void {
    if (this.stopCause) {
      // Stopping already: a stop that allows less time (the worker's second signal: none) cuts the grace short. A
      // task that ignored TERM kept the worker, told "stopping now", running for the whole JTM_KILL_GRACE
      // (adversary 34 M7). The run's cause stays the first one.
      if (graceMs < this.stopGraceMs) {
        this.stopGraceMs = graceMs;
        this.graceEnd = Math.min(this.graceEnd, Date.now() + graceMs);
      }
      return;
    }
    this.stopCause = cause;
    this.stopGraceMs = graceMs;
    if (this.tree) this.killing = this.killTree(graceMs);
    this.onStop();
  }

  async run(): Promise<TaskOutcome> {
    // Stopped before it began (a kill while it waited for its turn, a shutdown): its files are not touched
    // (emptying them could cut another run's output).
    if (this.stopCause) return this.stoppedOutcome(this.stopCause, []);
    const cwd = this.data.cwd === undefined ? process.cwd() : this.expand(this.data.cwd);
    const stdoutPath = this.stdoutPath;
    const stderrPath = this.stderrPath;
    const cannotStart = await checkDirectory(cwd);
    if (cannotStart) return { kind: 'final', status: TaskStatus.failed, reason: cannotStart, leftovers: [] };
    const held: PreparedOutput[] = [];
    try {
      // JTM's own files go to the log directory's tasks/: still this user's own (private-dir.ts), or the task
      // fails with the reason rather than writing through a directory someone swapped in.
      if (this.data.stdout === undefined || this.data.stderr === undefined || this.opts.env[TIMES_FILE_VAR])
        ensureStillPrivate(join(this.opts.logDir, 'tasks'), LOG_DIR);
      // Checked and opened without blocking the worker: a bad target fails this task alone, at once.
      const checks = [prepareOutput(stdoutPath, 'stdout')];
      if (stderrPath !== stdoutPath) checks.push(prepareOutput(stderrPath, 'stderr'));
      const settled = await Promise.allSettled(checks);
      for (const r of settled) if (r.status === 'fulfilled') held.push(r.value);
      const failed = settled.find(r => r.status === 'rejected');
      if (failed) throw failed.reason;
      this.opts.onOutputReady?.(stdoutPath, held[0]?.regular ?? false);
      // stderr to stdout's own file, however named (`out`, `./out`, a link): given as '' it shares stdout's open
      // file, as `2>&1` does; opened twice, each open at its own offset, the two wrote over each other.
      const sameFile = held.length === 1 || held[0]?.file === held[1]?.file;
      return this.withUnkillable(await this.execute(cwd, stdoutPath, sameFile ? '' : stderrPath));
    } catch (err) {
      return { kind: 'final', status: TaskStatus.failed, reason: (err as Error).message, leftovers: [] };
    } finally {
      for (const h of held) await h.hold?.close().catch(() => {});
    }
  }

  /**
   * A path of the task's with its `$VARS` expanded from the task's environment, as `output_files` are: submit
   * leaves a path that starts with `$` (or `~`, made `$HOME`) to the worker, and `output_dir: "$SCRATCH"` (the
   * original's own example) failed every task, "working directory $SCRATCH does not exist" (adversary 9 J2).
   */
  private expand(path: string): string {
    return path.includes('$') ? expandVars(path, this.opts.env) : path;
  }

  private async execute(cwd: string, stdoutPath: string, stderrPath: string): Promise<TaskOutcome> {
    // JTM_SIGNALLER_PID: the wrapper passes on to the shell the signals it gets, but not the worker's (which
    // signals every process of the task itself): passed on, the shell's TERM trap ran twice (task-exec.c).
    const env = {
      ...this.opts.env,
      PWD: cwd,
      JTM_TASK_ID: String(this.id),
      JTM_TASK_TOKEN: this.token,
      JTM_SIGNALLER_PID: String(process.pid),
    };
    let pty;
    // The awaits before this point (the directory, the output files) may have lasted past the lease (the worker
    // stopped, starved), or a stop may have come meanwhile: nothing is started then.
    const deadline = this.opts.startDeadline?.();
    if (!this.stopCause && deadline !== undefined && monotonicMs() >= deadline) this.stop('fenced');
    if (this.stopCause) return this.stoppedOutcome(this.stopCause, []);
    // The shell's listing of its children is read after its exit: never a file left by an earlier run of the task
    // (a worker that died, the shell of a lost run ending later), whose pids would be another run's or reused.
    const timesFile = this.opts.env[TIMES_FILE_VAR];
    if (timesFile) await rm(timesFile, { force: true }).catch(() => {});
    this.pids = PidWindow.open();
    try {
      const argv = taskArgv(this.data.command, stdoutPath, stderrPath, env);
      // The wrapper forks the command or the shell and waits for it (task-exec.c): the root is then JTM's, not one
      // of the task's processes (without it, bash is the root: no C compiler at install).
      this.rootIsWrapper = argv[0] !== '/bin/bash';
      pty = await runInPty(argv, {
        cwd,
        env,
        token: this.token,
        // Suspected of having killed a shared host once: it runs where it can harm no other task.
        ownHost: (this.data.host_deaths ?? 0) > 0,
        // Read again as the host takes the request: the lease may have been renewed meanwhile (a host of the
        // task's own is still starting), and a lease that broke reads 0.
        // A stop meanwhile (a kill, a shutdown) reads 0: nothing is started for it.
        ...(this.opts.startDeadline
          ? { deadline: () => (this.stopCause ? 0 : (this.opts.startDeadline?.() ?? 0)) }
          : {}),
      });
    } catch (err) {
      if (err instanceof SpawnExpired) {
        // Refused for a stop that came while the request waited for its host: that stop's outcome.
        if (this.stopCause) return this.stoppedOutcome(this.stopCause, []);
        this.opts.logger.warn({ task: this.id, err }, 'task not started: the lease lapsed first');
        this.stop('fenced');
        return this.stoppedOutcome('fenced', []);
      }
      if (err instanceof PtyHostExited) {
        return {
          kind: 'final',
          status: TaskStatus.failed,
          reason: `not started: ${err.message}`,
          leftovers: [],
          hostExited: true,
          hostTasks: err.hostTasks,
        };
      }
      const message = (err as Error).message;
      // The node out of ptys (forkpty), processes or descriptors: a condition of the node, often made by another
      // task or user, not of this command. It failed every task the worker took, in milliseconds, rc 126, no
      // retry (adversary 10 K7): given back instead, and the worker waits before it takes another.
      if (NODE_SHORT.test(message))
        return { kind: 'requeue', reason: `not started: ${message}`, leftovers: [], nodeShort: true };
      return { kind: 'final', status: TaskStatus.failed, reason: `cannot start: ${message}`, leftovers: [] };
    }
    this.pid = pty.pid;
    this.pids ??= PidWindow.aboveRoot(pty.pid);
    this.tree = new ProcessTree(pty.pid, pty.start);
    this.opts.onStarted?.(pty.pid);
    if (this.stopCause) this.killing = this.killTree(this.stopGraceMs);
    if (this.data.timeout_ms !== undefined)
      this.timer = setLongTimeout(() => this.stop('timeout'), this.data.timeout_ms);
    // filesOpen, ptyText: what the wrapper or bash said on the pty before the output files were open (why one could
    // not be opened, why the command could not start), kept by the pty host for the reason. What comes after
    // FILES_OPEN_MARK is the command's (it can write to its parent's pty), never taken for one.
    const {
      exitCode,
      signal,
      hostExited,
      hostEnd,
      hostTasks,
      watchdog,
      filesOpen,
      ptyText = '',
    } = await pty.exited;
    this.timer?.clear();
    const failed = exitCode !== 0 || signal !== 0;
    // First what the shell and its wrapper wrote as they ended (/proc mode): the high-water mark of a process
    // that lived between two watches is there, and a pass of the limit by it is the task's.
    await this.adoptListedChildren();
    // Over its memory limit: the kernel may have killed part of the tree, or all of it, before the watch saw it.
    if (!this.stopCause && this.opts.memory?.overLimit({ failed })) this.stop('outofresource');
    // The command ended by itself: nothing stopped it before its exit (its pty host alive). Its outcome is then
    // its own whatever comes next: a stop during the leftover grace (the worker's shutdown, a drain, a lost
    // lease, a leftover over the memory limit) only ends what it left running. Given back instead, a finished
    // task ran again — Cromwell had read its rc already (review of adversary 13 E1's grace).
    const exitedByItself = !this.stopCause && !watchdog && !hostExited;
    let leftBehindOverMemory = false;
    if (exitedByItself) {
      // What the task left running may be finishing its work: Cromwell's script leaves the two `tee`s that copy
      // the command's output to execution/stdout and stderr and does not wait for them; killed at once, a busy
      // node's calls ended success with an empty stdout (adversary 13 E1). They get the leftover grace to end.
      await this.untilLeftoversEnd(this.opts.leftoverGraceMs ?? 0);
      // Whatever is left then (background children, detached daemons) does not outlive the task. What it used
      // counts: a last look before the kill.
      this.opts.memory?.observeLeftovers?.(this.liveProcesses());
      // Over the memory limit, or killed in by the kernel, after the command's exit: said with its outcome.
      leftBehindOverMemory =
        this.stopCause === 'outofresource' || (this.opts.memory?.overLimit({ failed }) ?? false);
    }
    const killedByStop = this.killing ? await this.killing : [];
    // A stop's kill may have finished before the shell listed its last orphans (adopted just above, after the
    // exit: a TERM trap that starts `setsid env -i …` and exits): they are ended too, with what the stop killed.
    if (this.stopCause && this.tree && this.tree.refresh().length > 0)
      killedByStop.push(...(await this.killTree(Math.min(1000, this.opts.killGraceMs))));
    const leftovers = this.stopCause ? [] : await this.killTree(Math.min(1000, this.opts.killGraceMs));
    if (leftovers.length > 0)
      this.opts.logger.warn({ task: this.id, leftovers }, 'killed processes the task left behind');
    if (watchdog) {
      return {
        kind: 'requeue',
        reason: 'the pty host killed the task: its worker stopped answering (watchdog)',
        leftovers,
        watchdog: true,
      };
    }
    const code = signal ? 128 + signal : exitCode;
    // A timeout or kill that came as the command was ending by itself (its exit on its way from the pty host)
    // reached no live root: the command's own exit decides, and what the stop killed were leftovers. Seen: a
    // task that exited 0 at 1.99 s of a 2 s timeout was recorded `timeout` with exit code 0 (Cromwell read
    // rc 0: JTM's record and Cromwell's disagreed).
    if (this.stopCause && (exitedByItself || this.endedBeforeStop(signal, killedByStop))) {
      this.opts.logger.info(
        { task: this.id, stop: this.stopCause },
        'task ended by itself as it was stopped',
      );
      this.stopCause = undefined;
      leftovers.push(...killedByStop);
    }
    const redirect = code === REDIRECT_FAILED && !filesOpen ? redirectError(ptyText) : undefined;
    if (redirect && !this.stopCause) {
      return { kind: 'final', status: TaskStatus.failed, reason: redirect, leftovers };
    }
    const notExecuted = code === EXEC_FAILED && !signal && !filesOpen ? execError(ptyText) : undefined;
    if (notExecuted && !this.stopCause) {
      return { kind: 'final', status: TaskStatus.failed, exitCode: 126, reason: notExecuted, leftovers };
    }
    let outcome = await this.outcome(code, signal, leftovers, killedByStop, cwd, env);
    const unseen = this.opts.memory?.passedUnseen?.();
    if (unseen && outcome.kind === 'final' && outcome.status !== TaskStatus.outofresource)
      outcome = { ...outcome, reason: `${outcome.reason}; ${unseen}` };
    if (leftBehindOverMemory && outcome.kind === 'final')
      outcome = {
        ...outcome,
        reason: `${outcome.reason}; after it exited, what it left running went over the memory limit or was killed by the kernel's OOM killer (output it was still writing may be cut)`,
      };
    if (hostExited && outcome.kind === 'final' && outcome.status === TaskStatus.failed) {
      return {
        ...outcome,
        reason: `the worker's pty host ${hostEnd ?? 'exited'} under the task (its processes got SIGHUP)`,
        hostExited,
        ...(hostTasks !== undefined ? { hostTasks } : {}),
      };
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
    if (this.stopCause) {
      const own = killed.filter(pid => !(this.rootIsWrapper && pid === this.pid)).length;
      return this.stoppedOutcome(this.stopCause, leftovers, { code, killed: own });
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

  /**
   * How a run asked to stop ends, by the stop's cause: `ran`, the command's exit code and how many processes the
   * stop killed; without it, the command was never started (no exit code). A give-back spends no retry; a lost
   * lease counts towards a cap on give-backs (lease-losses.ts): a run that started towards `lease_losses` (or
   * `redis_silences`), one that did not towards its own, larger one.
   */
  private stoppedOutcome(
    cause: StopCause,
    leftovers: number[],
    ran?: { code: number; killed: number },
  ): TaskOutcome {
    const exit = ran ? { exitCode: ran.code } : {};
    switch (cause) {
      case 'kill': {
        const how = ran ? `(${counted(ran.killed, 'process', 'processes')})` : 'before it started';
        return {
          kind: 'final',
          status: TaskStatus.terminated,
          ...exit,
          reason: `killed on request ${how}`,
          leftovers,
        };
      }
      case 'timeout': {
        // Exact: `--timeout 500ms` was reported "after 1 s".
        const how = ran ? `after ${formatSeconds(this.data.timeout_ms ?? 0)}` : 'before it started';
        return { kind: 'final', status: TaskStatus.timeout, ...exit, reason: `timed out ${how}`, leftovers };
      }
      case 'outofresource':
        return {
          kind: 'final',
          status: TaskStatus.outofresource,
          ...exit,
          reason: this.opts.memory?.limitReason() ?? 'memory limit exceeded',
          leftovers,
        };
      case 'shutdown':
        return {
          kind: 'requeue',
          reason: `worker shut down before the task ${ran ? 'ended' : 'started'}`,
          leftovers,
        };
      case 'superseded':
        return { kind: 'abandon', reason: 'another worker owns the task', leftovers };
      // Not another worker: an operator hunted for a duplicate worker after a Redis restart without
      // persistence had lost every record (adversary 19 R1).
      case 'vanished':
        return {
          kind: 'abandon',
          reason: "the task's record is gone from Redis (a restart without its data, a flush): run stopped",
          leftovers,
          recordGone: true,
        };
      case 'fenced':
        // Given back (if this execution still owns the task once Redis answers) without spending a retry.
        return {
          kind: 'requeue',
          reason: ran
            ? 'worker lost its lease on Redis: run stopped before a takeover'
            : 'worker lost its lease on Redis: task not started, so that a takeover cannot overlap it',
          leftovers,
          fenced: true,
          ...(ran ? {} : { unstarted: true as const }),
          ...(this.redisSilentMs !== undefined ? { redisSilentMs: this.redisSilentMs } : {}),
        };
    }
  }

  /**
   * Whether the command's root process had ended by itself, not by a signal, before the stop signalled
   * anything of it: the stop then decided nothing. Only for a timeout or a kill, whose outcome is the record's
   * final status; a stop for the memory limit (the kernel may have killed part of the tree), or one that gives
   * the task back, keeps its own outcome.
   */
  private endedBeforeStop(signal: number, signalled: readonly number[]): boolean {
    const cause = this.stopCause;
    if (cause !== 'timeout' && cause !== 'kill') return false;
    return !signal && this.pid !== undefined && !signalled.includes(this.pid);
  }

  /** A task over its memory limit is killed at once: it only grows while it is given time. */
  private graceFor(cause: StopCause): number {
    return cause === 'outofresource' ? 0 : this.opts.killGraceMs;
  }

  /**
   * The wrapper, stopped (a task's `kill -STOP $PPID`), is continued: stopped, it never reaps its child, and the
   * task stayed `running` for ever, its command a zombie (adversary 23 F4; in every mode since the wrapper forks
   * the command, adversary 27 F1). It has no reason of its own to stop. `procs`: the tree as the watch just read
   * it (/proc mode); else the root alone is read.
   */
  wakeStoppedWrapper(procs?: readonly ProcInfo[]): void {
    if (!this.rootIsWrapper || this.pid === 0) return;
    const root = procs ? procs.find(p => p.pid === this.pid) : readProc(this.pid);
    if (root?.state !== 'T' && root?.state !== 't') return;
    try {
      process.kill(this.pid, 'SIGCONT');
    } catch {
      // gone meanwhile
    }
  }

  /** Clears the timeout timer without waiting for anything (worker shutdown). */
  dispose(): void {
    this.timer?.clear();
  }

  /**
   * The live processes of the task: the remembered tree plus the rest of its cgroup, or, without a cgroup
   * that holds it, anything carrying its token among the processes started since it started (`scanEnvirons`
   * false: not that scan, which reads the environment of every such process — the leftover grace's polls).
   */
  liveProcesses(scanEnvirons = true): ProcInfo[] {
    if (!this.tree) return [];
    const byPid = new Map<number, ProcInfo>();
    for (const p of this.tree.refresh()) byPid.set(p.pid, p);
    const members = this.opts.memory?.memberPids?.();
    const escaped: ProcInfo[] = [];
    if (members) {
      for (const pid of members) {
        if (byPid.has(pid)) continue;
        const info = readProc(pid);
        if (info && info.state !== 'Z') escaped.push(info);
      }
    } else if (scanEnvirons) {
      for (const p of findByToken(this.token, this.pids)) if (!byPid.has(p.pid)) escaped.push(p);
    }
    this.tree.adopt(escaped);
    for (const p of escaped) byPid.set(p.pid, p);
    return [...byPid.values()];
  }

  /**
   * /proc mode: the children the task's shell still had as it exited (its EXIT trap lists them with `times`),
   * the orphans it was the subreaper of: a walk may not have seen one born since the last watch.
   */
  private async adoptListedChildren(): Promise<void> {
    const listed = await this.opts.memory?.readShellExit?.();
    if (listed && listed.children.length > 0) this.tree?.adoptListed(listed.children, listed.uptimeS);
  }

  /**
   * Waits up to `withinMs` for the task's processes to end by themselves; a stop ends the wait. Looks at the tree
   * and the cgroup only (cheap), not the token scan of /proc, which the kill's own look does once (a scan per
   * pass took ≈ 110 ms with 2,100 processes); each look also reads what they use, for those that end meanwhile.
   */
  private async untilLeftoversEnd(withinMs: number): Promise<void> {
    if (withinMs <= 0) return;
    const deadline = monotonicMs() + withinMs;
    for (let wait = 5; !this.stopCause; wait = Math.min(2 * wait, 100)) {
      const left = this.liveProcesses(false);
      if (left.length === 0) return;
      this.opts.memory?.observeLeftovers?.(left);
      const rest = deadline - monotonicMs();
      if (rest <= 0) return;
      await sleep(Math.min(wait, rest));
    }
  }

  /** TERM to every process of the tree, KILL after `graceMs`; resolves with the pids it signalled once all are gone. */
  private async killTree(graceMs: number): Promise<number[]> {
    this.graceEnd = Date.now() + graceMs;
    const { signalled, survivors, forbidden } = await terminateAll(
      () => this.liveProcesses(),
      () => this.graceEnd,
    );
    if (survivors.length > 0)
      this.opts.logger.error({ task: this.id, pids: survivors }, 'processes survived SIGKILL');
    if (forbidden.length > 0) {
      for (const pid of forbidden) this.unkillable.add(pid);
      this.opts.logger.error(
        { task: this.id, pids: forbidden },
        "processes of another user could not be ended (EPERM): the worker's user may not signal them",
      );
    }
    return signalled;
  }

  /** A final outcome's reason says which of the task's processes this user could not end (killTree). */
  private withUnkillable(outcome: TaskOutcome): TaskOutcome {
    if (this.unkillable.size === 0 || outcome.kind !== 'final') return outcome;
    const n = this.unkillable.size;
    const pids = [...this.unkillable].slice(0, 10).join(',') + (n > 10 ? ',…' : '');
    return {
      ...outcome,
      reason: `${outcome.reason}; ${n} process${n === 1 ? '' : 'es'} of another user could not be ended (EPERM: ${pids})`,
    };
  }
}

/**
 * Why the command cannot start in `dir`, or undefined. A directory the worker's user may not enter (another user's
 * home, mode 0700) was reported as missing, or, where only the entry failed, as the command's own "exit code 1"
 * with no output at all (adversary 12 D2).
 */
async function checkDirectory(dir: string): Promise<string | undefined> {
  try {
    if (!(await stat(dir)).isDirectory()) return `cannot start: ${dir} is not a directory`;
    await access(dir, constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return `cannot start: working directory ${dir} does not exist`;
    if (permissionCode(err))
      return `cannot start: working directory ${dir} is not accessible to the worker's user ${workerUser()} (permission denied)`;
    return `cannot start: working directory ${dir}: ${code ?? (err as Error).message}`;
  }
  return undefined;
}

/** The worker's user, by name where the system has one. */
function workerUser(): string {
  return processUserName() ?? `uid ${process.getuid?.() ?? '?'}`;
}

/**
 * The exit code of the pty's child when it could not exec the task's wrapper (node-pty prints "execvp(3)
 * failed.: <why>" on the pty and exits 1): the command never ran. Seen with E2BIG, a worker environment of
 * 2 MB and a 60 kB command, reported as the command's own "exit code 1" with no message anywhere.
 */
const EXEC_FAILED = 1;

function execError(ptyText: string): string | undefined {
  const m = /execvp\(3\) failed\.?:? *([^\r\n]*)/.exec(ptyText);
  if (!m) return undefined;
  const why = m[1]?.trim() || 'exec failed';
  const hint = /argument list too long/i.test(why)
    ? " (the command and the worker's environment together exceed the system's limit: E2BIG)"
    : '';
  return `cannot start: ${why}${hint}`;
}

/** The wrapper's exit code when bash could not open the output files (it then prints why on the pty). */
const REDIRECT_FAILED = 125;

/**
 * bash's own message about an output file it could not open ("bash: /x/out: Permission denied"): the last line
 * that has one, from its `bash: ` on. Not only a line that starts with it: text the shell's start wrote without a
 * newline (a BASH_ENV script) shares the line, and the message was lost (adversary 41 F1).
 */
export function redirectError(ptyText: string): string | undefined {
  const line = ptyText
    .split(/\r?\n/)
    .reverse()
    .find(l => l.includes('bash: '));
  if (line === undefined) return undefined;
  return `cannot write output: ${line.slice(line.indexOf('bash: ') + 'bash: '.length).trim()}`;
}
