import { readFileSync, readlinkSync } from 'node:fs';

import { permissionCode } from '../errors.js';
import { listPids, readProc, type ProcInfo } from './proc-files.js';

/*
 * Finding a task's processes by the token in their environment (JTM_TASK_TOKEN), which every process a task
 * starts inherits: the ones that left its process tree (detached, daemonized), and the leftovers of lost runs.
 * PidWindow narrows a scan to the pids the kernel handed out since a task started.
 */

/**
 * Every process whose environment carries `JTM_TASK_TOKEN=<token>`: finds descendants that escaped the
 * tree walk (started and detached between two samples). Only the worker's own user's processes are
 * readable, which are exactly the ones a task can start. `window`: only pids the kernel handed out since the
 * task started are read (see pidWindow); the others cannot belong to it.
 */
export function findByToken(token: string, window?: PidWindow): ProcInfo[] {
  const out: ProcInfo[] = [];
  const pids = listPids();
  const inWindow = window ? window.since() : undefined;
  for (const pid of pids) {
    if (pid === process.pid || (inWindow && !inWindow(pid))) continue;
    if (taskTokenOf(pid) !== token) continue;
    const info = readProc(pid);
    if (info && info.state !== 'Z') out.push(info);
  }
  return out;
}

/**
 * findByToken for a kill's rounds (every 50 ms through the grace): the first call reads every process's
 * environment; each later one reads only the processes the kernel handed a pid to since the previous call (a
 * PidWindow opened before each listing; all of /proc again when it cannot tell), and keeps those found before
 * that are still the same process (start time). A lost run's kill read all of /proc at every round: with 2,000
 * processes on the node, ≈ 100 ms of a busy event loop per 50 ms round for the whole grace (review of 12-03).
 * One found once stays found though it rewrote its environment since (`exec env -i …`): it is the run's.
 */
export function tokenRounds(token: string): () => ProcInfo[] {
  let found = new Map<number, ProcInfo>();
  let window: PidWindow | undefined;
  return () => {
    const next = PidWindow.open();
    const now = new Map<number, ProcInfo>();
    for (const p of findByToken(token, window)) now.set(p.pid, p);
    window = next;
    for (const p of found.values()) {
      if (now.has(p.pid)) continue;
      const info = readProc(p.pid);
      if (info && info.start === p.start && info.state !== 'Z') now.set(p.pid, info);
    }
    found = now;
    return [...now.values()];
  };
}

const TOKEN_PREFIX = Buffer.from('JTM_TASK_TOKEN=');

/**
 * Finds, at each watch, the processes of running tasks that the tree walk cannot reach: one that detached
 * before a walk ever saw it as a descendant (`( cmd & )`, `sh -c 'cmd &'`, a daemonizing tool: its parent
 * exited at once and it was re-parented to init) is in no task's tree, and in /proc mode escaped the task's
 * memory limit and accounting entirely (a 300 MB child of a 100 MB task: `success`, peak 3 MB). Each process
 * on the node is read once (its environment: the task token its task's processes inherit), when it is first
 * listed, and matched against the running tasks at every scan; a pid that leaves /proc is forgotten, so a
 * reused one is read again. (A process that execs keeps its environment, and one that rewrites it is not
 * the task's concern here: the end-of-task scan reads environments again.)
 */
export class EscapeScanner {
  /** Each listed process's task token (undefined: none), read once: a token is matched at every scan. */
  private readonly tokenOf = new Map<number, string | undefined>();
  /** The start time of each process found with a token, when it was read: what tells it from a reused pid. */
  private readonly startOf = new Map<number, number>();

  /** The pids whose environment carries one of `tokens` (ProcessTree.adoptPids reads the ones it lacks). */
  scan(tokens: ReadonlySet<string>): Map<string, number[]> {
    const found = new Map<string, number[]>();
    const listed = listPids();
    const now = new Set(listed);
    for (const pid of this.tokenOf.keys()) {
      if (now.has(pid)) continue;
      this.tokenOf.delete(pid);
      this.startOf.delete(pid);
    }
    for (const pid of listed) {
      if (pid === process.pid) continue;
      let token = this.tokenOf.has(pid) ? this.tokenOf.get(pid) : this.read(pid);
      // A process read before its task was known here (its run not registered yet) is matched now.
      if (token === undefined || !tokens.has(token)) continue;
      // The pid may have been handed out again since it was read (between two scans: a busy node wraps its
      // pids in seconds): a match is a process only if it is the one read. Else the stranger was reported with
      // the token, adopted into the task's tree and killed with it (adversary 16 Q1). Matches only: the rest of
      // the node is not read at every scan; a reused pid among them is read again once it leaves the list.
      if (readProc(pid)?.start !== this.startOf.get(pid)) token = this.read(pid);
      if (token === undefined || !tokens.has(token)) continue;
      const list = found.get(token);
      if (list) list.push(pid);
      else found.set(token, [pid]);
    }
    return found;
  }

  /** Reads a process's token (and, with one, its start time); remembered unless it could not be told. */
  private read(pid: number): string | undefined {
    const start = readProc(pid)?.start;
    const read = taskTokenOf(pid);
    // Not remembered when it could not be told (read as the process was born or in its exec: an empty or
    // unreadable environment): remembered as "none", a detached child was missed for good, 1 run in 4 of
    // resources.test.ts's `( cmd & )` row in procfs mode under load, peak 3 MB.
    if (read === null) {
      this.tokenOf.delete(pid);
      this.startOf.delete(pid);
      return undefined;
    }
    this.tokenOf.set(pid, read);
    if (read !== undefined && start !== undefined) this.startOf.set(pid, start);
    else this.startOf.delete(pid);
    return read;
  }
}

/** The JTM_TASK_TOKEN of a process's environment; undefined: none; null: cannot tell (unreadable, or empty). */
function taskTokenOf(pid: number): string | undefined | null {
  let env: Buffer;
  try {
    env = readFileSync(`/proc/${pid}/environ`);
  } catch (err) {
    // Another user's process: never one of ours (a task runs as the worker's user), and it stays so.
    return permissionCode(err) ? undefined : null;
  }
  if (env.length === 0) return null;
  let at = env.indexOf(TOKEN_PREFIX);
  // Only at the start of a variable (after a NUL, or first).
  while (at > 0 && env[at - 1] !== 0) at = env.indexOf(TOKEN_PREFIX, at + 1);
  if (at < 0) return undefined;
  const start = at + TOKEN_PREFIX.length;
  const end = env.indexOf(0, start);
  return env.toString('latin1', start, end < 0 ? env.length : end);
}

let pidMax: number | undefined;
/** Whether /proc/sys/kernel/ns_last_pid speaks of the pids /proc lists (the same pid namespace), once known. */
let lastPidUsable: boolean | undefined;

function readPidMax(): number {
  if (pidMax === undefined) {
    try {
      pidMax = Number(readFileSync('/proc/sys/kernel/pid_max', 'latin1').trim()) || 32768;
    } catch {
      pidMax = 32768;
    }
  }
  return pidMax;
}

/** The last pid the kernel handed out (in the pid namespace /proc shows), or undefined when it cannot say. */
function lastPid(): number | undefined {
  try {
    // /proc may be another pid namespace's (a container with the host's /proc): then ns_last_pid is not its.
    lastPidUsable ??= readlinkSync('/proc/self') === String(process.pid);
    if (!lastPidUsable) return undefined;
    const n = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'latin1').trim());
    return Number.isSafeInteger(n) && n > 0 ? n : undefined;
  } catch {
    lastPidUsable = false;
    return undefined;
  }
}

/**
 * Pids handed out per ms that no kernel exceeds for long (a million a minute): a full turn of the pid space
 * takes at least pid_max / this ms. Only a bound on how long a window stays trustworthy; the leftover sweep
 * (leftovers.ts) still finds, within a minute, any process a scan missed.
 */
const MAX_PIDS_PER_MS = 1_000_000 / 60_000;

/**
 * The pids handed out from a mark on: the kernel allocates pids in increasing order from the last one,
 * wrapping at pid_max, so every process started after the mark has a pid in the circular range
 * (mark, last pid now] — as long as the pids have not gone round once since (bounded by its age, at half a
 * turn). Lets the end-of-task scan read the environment of the processes started during the task only, not
 * of every process on the node (the whole /proc is read when the window is unknown or too old).
 */
export class PidWindow {
  private constructor(
    private readonly mark: number,
    private readonly at: number,
    /** No ns_last_pid: the mark is the task's root pid, trusted only while a wrap is impossible. */
    private readonly fromRoot = false,
  ) {}

  /** Taken before the task's first process is forked; undefined when ns_last_pid cannot be read. */
  static open(): PidWindow | undefined {
    const mark = lastPid();
    return mark === undefined ? undefined : new PidWindow(mark, Date.now());
  }

  /**
   * Where ns_last_pid cannot be read (a kernel without CONFIG_CHECKPOINT_RESTORE): the task's descendants
   * have pids above its root's while the pids cannot have wrapped since — pid_max large (4M on 64-bit
   * kernels), the root far below it and the task young.
   */
  static aboveRoot(rootPid: number): PidWindow {
    return new PidWindow(rootPid - 1, Date.now(), true);
  }

  /**
   * Whether a pid listed before this call was handed out after the mark; undefined: cannot tell (read all).
   * Called after /proc is listed, so that every listed pid is at most the last pid read here.
   */
  since(): ((pid: number) => boolean) | undefined {
    const max = readPidMax();
    const ageMs = Date.now() - this.at;
    if (this.fromRoot) {
      // No kernel forks a million processes a minute; below that margin a wrap is impossible.
      const safe = max >= 4_000_000 && ageMs < 60_000 && this.mark < max - 1_000_000;
      return safe ? pid => pid > this.mark : undefined;
    }
    if (ageMs * MAX_PIDS_PER_MS >= max / 2) return undefined;
    const now = lastPid();
    if (now === undefined) return undefined;
    return pidsBetween(this.mark, now);
  }
}

/** Pids handed out after `mark` up to `last` (the last one handed out), the pid space wrapping in between. */
export function pidsBetween(mark: number, last: number): (pid: number) => boolean {
  return last >= mark ? pid => pid > mark && pid <= last : pid => pid > mark || pid <= last;
}
