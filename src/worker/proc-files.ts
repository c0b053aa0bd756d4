import { closeSync, openSync, readdirSync, readFileSync, readSync } from 'node:fs';
import { readFile } from 'node:fs/promises';

/*
 * What /proc says of processes and of the node: one process's stat, the pids listed, memory figures. Read
 * synchronously where a file is small and the caller needs the answer in the same tick (the watch, a kill),
 * asynchronously where the kernel takes long to answer (smaps_rollup).
 */

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
export function readProcText(path: string): string {
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

/**
 * A process's memory from /proc/<pid>/status (bytes): its resident high-water mark (VmHWM, file pages included),
 * the memory it holds now (RssAnon + RssShmem: what a memory limit is judged on in procfs mode, page cache it
 * maps not counted) and the file pages it maps now (RssFile). Undefined once it is gone; a kernel without the
 * Rss* lines (before 4.5) gives its VmRSS as held and 0 as file.
 */
export function readStatusMemory(pid: number): { hwm: number; held: number; file: number } | undefined {
  let text: string;
  try {
    text = readProcText(`/proc/${pid}/status`);
  } catch {
    return undefined;
  }
  const kb = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const rss = kb('VmRSS') ?? 0;
  const hwm = kb('VmHWM') ?? rss;
  const anon = kb('RssAnon');
  if (anon === undefined) return { hwm, held: rss, file: 0 };
  return { hwm, held: anon + (kb('RssShmem') ?? 0), file: kb('RssFile') ?? 0 };
}

/**
 * The proportional set size of some processes (bytes): each page shared by n processes counts 1/n to each, so
 * pages a forked child shares copy-on-write with its parent count once in the sum, where their RSS counts them
 * in every process. From /proc/<pid>/smaps_rollup (Linux ≥ 4.14), read asynchronously: the kernel walks the
 * process's page tables for it (≈ 7 ms for 200 MB here), too long to block the worker's event loop. A process
 * gone meanwhile counts 0; one whose figure cannot be read counts its RSS (`fallback`). Undefined when no
 * process could be read at all.
 */
export async function readProportionalSet(
  procs: readonly ProcInfo[],
): Promise<{ total: number; held: number } | undefined> {
  let total = 0;
  let held = 0;
  let read = 0;
  await Promise.all(
    procs.map(async p => {
      try {
        const text = await readFile(`/proc/${p.pid}/smaps_rollup`, 'latin1');
        const kb = (key: string): number | undefined => {
          const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
          return m ? Number(m[1]) * 1024 : undefined;
        };
        const pss = kb('Pss');
        if (pss === undefined) throw new Error('no Pss line');
        total += pss;
        // Held: anonymous and shmem pages, not the page cache it maps (Pss_Anon since Linux 5.10; before, Pss).
        const anon = kb('Pss_Anon');
        held += anon === undefined ? pss : anon + (kb('Pss_Shmem') ?? 0);
        read++;
      } catch (err) {
        if (
          (err as NodeJS.ErrnoException).code === 'ENOENT' ||
          (err as NodeJS.ErrnoException).code === 'ESRCH'
        )
          return;
        total += p.rssBytes;
        held += p.rssBytes;
      }
    }),
  );
  return read > 0 ? { total, held } : undefined;
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
