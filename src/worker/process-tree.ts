import { readdirSync } from 'node:fs';

import { CLOCK_TICKS, readProc, readProcText, type ProcInfo } from './proc-files.js';

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
