import { setTimeout as sleep } from 'node:timers/promises';

import { permissionCode } from '../errors.js';
import { readProc, type ProcInfo } from './proc-files.js';

/* Signalling processes listed a moment ago, each only while it is still the process listed. */

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
 * their cleanup), KILL to what is left once the grace has passed (`grace` ms from the first TERM, or when
 * `grace()` says);
 * resolves once all are gone (or KILL was tried for 5 s) with every pid it signalled and any survivors.
 * `live` is called again at each round, so children forked during the grace period are caught too.
 */
export async function terminateAll(
  live: () => ProcInfo[],
  /** The grace in ms; or when it ends (epoch ms), read at each round: a later, shorter stop cuts it short. */
  grace: number | (() => number),
): Promise<{ signalled: number[]; survivors: number[]; forbidden: number[] }> {
  const fixedEnd = typeof grace === 'number' ? Date.now() + grace : 0;
  const graceEnd = typeof grace === 'number' ? () => fixedEnd : grace;
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
  if (graceEnd() > Date.now()) askToEnd(procs);
  while (Date.now() < graceEnd()) {
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
 * K2). Slurm and systemd send the same pair. All stopped first, as before the KILL: where no group holds them all
 * (a finished task's leftovers, their shell gone) the TERMs go one process at a time, and a subshell whose child
 * died of its TERM first ran its next command before its own came (adversary 36 M2: `(sleep 20; echo never) &`
 * left by a task wrote `never` to its stdout and bash's `Terminated` to its stderr in 4 of 36 runs). A stopped
 * process with TERM's default action dies of it at once; one that handles TERM runs its handler after the CONT.
 */
function askToEnd(procs: readonly ProcInfo[]): void {
  signalAll(procs, 'SIGSTOP');
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
