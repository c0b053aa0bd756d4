import { closeSync, openSync, readdirSync, readFileSync, readlinkSync, readSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { readFile } from 'node:fs/promises';

import { permissionCode } from '../errors.js';

/** One process as read from /proc/<pid>/stat and statm. Times in clock ticks, memory in bytes. */
export interface ProcInfo {
  pid: number;
  /** One-letter state; Z (zombie) means exited, waiting to be reaped. */
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** Start time since boot, in ticks: with the pid it identifies a process across pid reuse. */
  start: number;
  /** utime + stime + cutime + cstime: this process and its reaped children. */
  cpuTicks: number;
  rssBytes: number;
  vsizeBytes: number;
  /** Number of threads: a single-threaded process has one `task/<tid>/children` to read. */
  threads?: number;
}

const PAGE = 4096;
export const CLOCK_TICKS = 100;

/** Parses /proc/<pid>/stat (the command name may hold spaces and parentheses). */
export function parseStat(pid: number, text: string): ProcInfo | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const f = text.slice(close + 2).split(' ');
  // f[0] is field 3 (state); field n is f[n - 3].
  const num = (n: number): number => Number(f[n - 3]);
  return {
    pid,
    state: f[0] ?? '?',
    ppid: num(4),
    pgid: num(5),
    sid: num(6),
    cpuTicks: num(14) + num(15) + num(16) + num(17),
    threads: num(20),
    start: num(22),
    vsizeBytes: num(23),
    rssBytes: num(24) * PAGE,
  };
}

const procBuffer = Buffer.allocUnsafe(16384);

/**
 * A small /proc file in one read into a reused buffer: about 2.5 times cheaper than readFileSync (no fstat,
 * no allocation), which matters because the watch reads every process of every task several times a second.
 */
function readProcText(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const n = readSync(fd, procBuffer, 0, procBuffer.length, 0);
    // A full buffer may be a longer file (a process with thousands of children): read it whole.
    return n === procBuffer.length ? readFileSync(path, 'latin1') : procBuffer.toString('latin1', 0, n);
  } finally {
    closeSync(fd);
  }
}

export function readProc(pid: number): ProcInfo | undefined {
  try {
    return parseStat(pid, readProcText(`/proc/${pid}/stat`));
  } catch {
    return undefined;
  }
}

export function listPids(): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    const c = d.charCodeAt(0);
    if (c >= 48 && c <= 57) out.push(Number(d));
  }
  return out;
}

/** Direct children of a process, from /proc/<pid>/task/<tid>/children (no full /proc scan). */
function childrenOf(pid: number, threads: number | undefined): number[] {
  const out: number[] = [];
  let tids: string[];
  try {
    tids = threads === 1 ? [String(pid)] : readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const text = readProcText(`/proc/${pid}/task/${tid}/children`).trim();
      if (text) for (const c of text.split(' ')) out.push(Number(c));
    } catch {
      // thread gone
    }
  }
  return out;
}

/**
 * The process tree of one task, remembered across samples: a process seen once as a descendant stays
 * a member while it lives, even after its parent dies and it is re-parented (double fork, setsid).
 * Members are keyed by pid and start time, so a reused pid is never mistaken for one.
 */
export class ProcessTree {
  private readonly members = new Map<number, number>();
  /**
   * Whether the root has been looked for: from then on it is a member like the others, keyed by its start
   * time, and never looked up by its bare pid again. Looked up at each walk, the root's pid, handed out again
   * after the root had exited (pids wrap every few seconds on a busy node with pid_max 32768), made another
   * task's `sleep` a member of this tree: the end of this task killed it as a leftover, alone, and that other
   * task's shell ran the rest of its script (adversary 16 Q1).
   */
  private rootLooked = false;
  /** The root's start time: the lower bound of what adoptListed takes. */
  private readonly rootStart: number | undefined;

  /**
   * `rootStart`: the root's start time as its pty host read it at the fork, which keys it; without it the root is
   * looked up at once (on a loaded worker the 'spawned' message can come late enough for an exited root's pid to
   * be someone else's: review).
   */
  constructor(
    readonly rootPid: number,
    rootStart?: number,
  ) {
    if (rootStart !== undefined) {
      this.members.set(rootPid, rootStart);
      this.rootLooked = true;
    } else this.refresh();
    this.rootStart = this.members.get(rootPid);
  }

  /** Walks the tree from the root and the remembered members; returns the live members. */
  refresh(): ProcInfo[] {
    const live: ProcInfo[] = [];
    const seen = new Set<number>();
    const queue = this.rootLooked ? [...this.members.keys()] : [this.rootPid, ...this.members.keys()];
    this.rootLooked = true;
    while (queue.length > 0) {
      const pid = queue.pop() as number;
      if (seen.has(pid)) continue;
      seen.add(pid);
      const info = readProc(pid);
      const known = this.members.get(pid);
      if (!info || info.state === 'Z' || (known !== undefined && known !== info.start)) {
        this.members.delete(pid);
        continue;
      }
      this.members.set(pid, info.start);
      live.push(info);
      for (const c of childrenOf(pid, info.threads)) queue.push(c);
    }
    return live;
  }

  /** Adds processes found by other means (the environment scan). */
  adopt(procs: readonly ProcInfo[]): void {
    for (const p of procs) this.members.set(p.pid, p.start);
  }

  /** The same by pid: only those not held already are read (their start time keys them). */
  adoptPids(pids: readonly number[]): void {
    for (const pid of pids) {
      if (this.members.has(pid)) continue;
      const info = readProc(pid);
      if (info && info.state !== 'Z') this.members.set(pid, info.start);
    }
  }

  /**
   * Adds the processes the task's shell listed as its children as it exited: the orphans it was the subreaper
   * of (task-exec.c), re-parented to init since. Each only if born no later than the listing (`uptimeS`: seconds
   * since boot, the clock of the start time in /proc/<pid>/stat) and not before the task's root, so that a pid
   * handed out again since is never taken for one.
   */
  adoptListed(pids: readonly number[], uptimeS: number): void {
    const rootStart = this.rootStart;
    const latest = Math.ceil(uptimeS * CLOCK_TICKS) + 1;
    for (const pid of pids) {
      if (this.members.has(pid)) continue;
      const info = readProc(pid);
      if (!info || info.state === 'Z' || info.start > latest) continue;
      if (rootStart !== undefined && info.start < rootStart) continue;
      this.members.set(pid, info.start);
    }
  }

  pids(): number[] {
    return [...this.members.keys()];
  }
}

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

/**
 * Sends `signal` to each process and to its process group; gone processes are ignored. Each pid (a group's
 * leader for the group) is signalled only if it is still the process listed — the same start time, read just
 * before the signal: a process that died of the group's signal a moment before (or of the previous round's) is
 * reaped at once, and on a busy node its pid is handed out again within milliseconds. The pty host's second
 * round of SIGKILLs, and a kill's per-process TERM and CONT after its group's, killed whoever had the pid next
 * (adversary 17 R2, R3). What is left is the time between that read and the signal (two system calls).
 */
export function signalAll(procs: readonly ProcInfo[], signal: NodeJS.Signals): void {
  // Only groups led by one of these processes: a child caught between fork and setsid still has its parent's
  // group (the pty host's), which must never be signalled.
  const byPid = new Map(procs.map(p => [p.pid, p]));
  const groups = new Set<number>();
  for (const p of procs) {
    if (byPid.has(p.pgid) && p.pgid > 1 && p.pgid !== process.pid && p.pgid !== getOwnPgid())
      groups.add(p.pgid);
  }
  const signalledGroups = new Set<number>();
  for (const g of groups) {
    if (!stillTheSame(byPid.get(g) as ProcInfo)) continue;
    trySignal(-g, signal);
    signalledGroups.add(g);
  }
  // Each process once: a member of a group signalled above has it already. Sent again, a TERM trap ran twice (a
  // task's `trap 'echo trapped' TERM` printed it twice at a kill; its cleanup, a flush or an `rm`, ran twice).
  for (const p of procs) {
    const now = readProc(p.pid);
    if (now?.start === p.start && !signalledGroups.has(now.pgid)) trySignal(p.pid, signal);
  }
}

/** Whether `p.pid` is still the process listed (a zombie of it counts: signalling one is harmless). */
function stillTheSame(p: ProcInfo): boolean {
  return readProc(p.pid)?.start === p.start;
}

/**
 * TERM (with CONT) once to every process `live()` returns and to any that appear (not to the children of those:
 * their cleanup), KILL to what is left after
 * `graceMs` from the first TERM;
 * resolves once all are gone (or KILL was tried for 5 s) with every pid it signalled and any survivors.
 * `live` is called again at each round, so children forked during the grace period are caught too.
 */
export async function terminateAll(
  live: () => ProcInfo[],
  graceMs: number,
): Promise<{ signalled: number[]; survivors: number[]; forbidden: number[] }> {
  const signalled = new Set<number>();
  /** Processes born to ones already asked to end (their cleanup): not signalled before the grace ends. */
  const spared = new Set<number>();
  /**
   * Processes this user may not signal (EPERM: a task's `sudo -u other …`, a setuid program): never signalled,
   * so not counted as killed, and not waited for (the worker logged them as "survived SIGKILL", the record
   * counted them killed, adversary 12 D11).
   */
  const forbidden = new Set<number>();
  const mayEnd = (all: ProcInfo[]): ProcInfo[] =>
    all.filter(p => {
      if (forbidden.has(p.pid)) return false;
      if (mayNotSignal(p.pid)) forbidden.add(p.pid);
      return !forbidden.has(p.pid);
    });
  const result = (rest: ProcInfo[]) => ({
    signalled: [...signalled].filter(pid => !forbidden.has(pid)),
    survivors: rest.map(p => p.pid),
    forbidden: [...forbidden],
  });
  let procs = mayEnd(live());
  if (procs.length === 0) return result([]);
  procs.forEach(p => signalled.add(p.pid));
  // No grace (a task over its memory limit): SIGKILL at once, as documented; a TERM first was one more round
  // of signals to pids that may be another process's by the next (adversary 17 R3).
  if (graceMs > 0) askToEnd(procs);
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await sleep(50);
    procs = mayEnd(live());
    if (procs.length === 0) return result([]);
    // One TERM per process, to those that appeared since: re-sent every 50 ms, a TERM trap was entered again
    // before it could finish (99 times in a second) and a handler that flushes was interrupted (adversary 10 K8).
    // Not to a child of a process already asked to end: that is its cleanup (a trap's `sleep`, `cp`, `rm`),
    // which has the grace too; what is left at its end is killed.
    const fresh: ProcInfo[] = [];
    for (const p of procs) {
      if (signalled.has(p.pid) || spared.has(p.pid)) continue;
      if (signalled.has(p.ppid) || spared.has(p.ppid)) spared.add(p.pid);
      else fresh.push(p);
    }
    fresh.forEach(p => signalled.add(p.pid));
    if (fresh.length > 0) askToEnd(fresh);
  }
  for (let round = 0; round < 100 && procs.length > 0; round++) {
    procs.forEach(p => signalled.add(p.pid));
    // All stopped first, then all killed: killed one by one, a parent that ignores TERM ran its next command (a
    // write to a file) in the moment between its child's death and its own SIGKILL (adversary 31 F5: `(trap ''
    // TERM; sleep 30; echo O >> marks) &` × 40, a kill wrote 0-3 marks in each of 6 tries). A process with a
    // SIGSTOP pending runs no code of its own before it stops, and SIGKILL ends a stopped one.
    signalAll(procs, 'SIGSTOP');
    signalAll(procs, 'SIGKILL');
    await sleep(50);
    procs = mayEnd(live());
  }
  return result(procs);
}

/** Whether this process may not signal `pid` (another user's, to a process without the capability). */
function mayNotSignal(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return permissionCode(err) === 'EPERM';
  }
}

/**
 * SIGTERM, then SIGCONT: a stopped process (`kill -STOP`, a debugger, a `^Z` of the root) acts on a TERM only once
 * continued, so without the CONT its trap never ran and the whole grace was spent before the KILL (adversary 10
 * K2). Slurm and systemd send the same pair.
 */
function askToEnd(procs: readonly ProcInfo[]): void {
  signalAll(procs, 'SIGTERM');
  signalAll(procs, 'SIGCONT');
}

let ownPgid: number | undefined;
function getOwnPgid(): number {
  ownPgid ??= readProc(process.pid)?.pgid ?? -1;
  return ownPgid;
}

function trySignal(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone, or not ours
  }
}

/** Memory of the node, for perc_mem_used. */
export function nodeMemory(): { totalBytes: number; usedPercent: number } {
  try {
    const text = readFileSync('/proc/meminfo', 'latin1');
    const field = (name: string): number =>
      Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? 0) * 1024;
    const total = field('MemTotal');
    const avail = field('MemAvailable');
    return { totalBytes: total, usedPercent: total > 0 ? ((total - avail) / total) * 100 : 0 };
  } catch {
    return { totalBytes: 0, usedPercent: 0 };
  }
}

/** A process's resident high-water mark (VmHWM in /proc/<pid>/status), in bytes; undefined once it is gone. */
export function readHighWaterMark(pid: number): number | undefined {
  let text: string;
  try {
    text = readProcText(`/proc/${pid}/status`);
  } catch {
    return undefined;
  }
  const m = /^VmHWM:\s+(\d+) kB$/m.exec(text);
  return m ? Number(m[1]) * 1024 : undefined;
}

/**
 * The proportional set size of some processes (bytes): each page shared by n processes counts 1/n to each, so
 * pages a forked child shares copy-on-write with its parent count once in the sum, where their RSS counts them
 * in every process. From /proc/<pid>/smaps_rollup (Linux ≥ 4.14), read asynchronously: the kernel walks the
 * process's page tables for it (≈ 7 ms for 200 MB here), too long to block the worker's event loop. A process
 * gone meanwhile counts 0; one whose figure cannot be read counts its RSS (`fallback`). Undefined when no
 * process could be read at all.
 */
export async function readProportionalSet(procs: readonly ProcInfo[]): Promise<number | undefined> {
  let total = 0;
  let read = 0;
  await Promise.all(
    procs.map(async p => {
      try {
        const m = /^Pss:\s+(\d+) kB$/m.exec(await readFile(`/proc/${p.pid}/smaps_rollup`, 'latin1'));
        if (!m) throw new Error('no Pss line');
        total += Number(m[1]) * 1024;
        read++;
      } catch (err) {
        if (
          (err as NodeJS.ErrnoException).code === 'ENOENT' ||
          (err as NodeJS.ErrnoException).code === 'ESRCH'
        )
          return;
        total += p.rssBytes;
      }
    }),
  );
  return read > 0 ? total : undefined;
}

/** The node's MemAvailable (bytes), or undefined when /proc/meminfo cannot be read. */
export function memAvailable(): number | undefined {
  try {
    const m = /^MemAvailable:\s+(\d+)/m.exec(readFileSync('/proc/meminfo', 'latin1'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
