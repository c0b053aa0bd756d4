// What a test file may leave behind, checked after it by test/helpers/cleanup.ts (as graphile-worker's
// __tests__/helpers.ts checks its pools): processes it started, and sockets it opened.
import { readdirSync, readFileSync } from 'node:fs';

export interface StrayProcess {
  pid: number;
  command: string;
}

function readProc(pid: string, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * Live processes (not zombies) that belong to this test file: descendants of this process, and processes
 * whose environment names one of `dirs` (the file's temporary directories: a worker's JTM_LOG_DIR, its
 * tasks, and what they started, even once re-parented to init). Linux only ([] elsewhere).
 */
export function strayProcesses(dirs: readonly string[]): StrayProcess[] {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter(p => /^\d+$/.test(p));
  } catch {
    return [];
  }
  const parent = new Map<string, string>();
  const live = new Set<string>();
  for (const pid of pids) {
    const stat = readProc(pid, 'stat');
    if (!stat) continue;
    // Fields after the command name (which may hold spaces and parentheses): state, ppid, ...
    const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' || state === 'X' || ppid === undefined) continue;
    parent.set(pid, ppid);
    live.add(pid);
  }
  const self = String(process.pid);
  const descends = (pid: string): boolean => {
    for (let p = parent.get(pid), n = 0; p !== undefined && n < 64; p = parent.get(p), n++)
      if (p === self) return true;
    return false;
  };
  const out: StrayProcess[] = [];
  for (const pid of live) {
    if (pid === self) continue;
    let mine = descends(pid);
    if (!mine && dirs.length > 0) {
      const environ = readProc(pid, 'environ');
      mine = environ !== undefined && dirs.some(d => environ.includes(d));
    }
    if (mine) {
      const command = (readProc(pid, 'cmdline') ?? '').split('\0').join(' ').trim();
      out.push({ pid: Number(pid), command });
    }
  }
  return out;
}

/** Open sockets and child-process handles of this process, by kind (timers are not counted). */
export function openHandles(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const kind of process.getActiveResourcesInfo())
    if (/TCP|Pipe|Process|UDP/.test(kind) && kind !== 'PipeWrap')
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
  return counts;
}

/** Kinds with more handles now than in `before`, with how many more. */
export function newHandles(before: Map<string, number>, now = openHandles()): string[] {
  const out: string[] = [];
  for (const [kind, n] of now)
    if (n > (before.get(kind) ?? 0)) out.push(`${n - (before.get(kind) ?? 0)} ${kind}`);
  return out;
}
