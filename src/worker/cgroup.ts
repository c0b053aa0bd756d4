import { mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import { rmdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { sleepSync } from '../sleep-sync.js';

/**
 * Kernel accounting of a task: one cgroup per task, so that its peak memory, CPU time and memory limit
 * cover every process it ever started, including those that lived between two samples (cgroup v2, or the
 * v1 memory + cpuacct controllers where that is what the node has). The worker makes its task cgroups
 * under its own cgroup (root, a delegated systemd slice, or Slurm's job cgroup with delegation); where it
 * cannot, the worker falls back to /proc sampling (accounting.ts) and says why.
 */
export type CgroupMode = 'cgroup-v2' | 'cgroup-v1';

/** One task's cgroup: the task's wrapper moves itself into it before it runs the command. */
export interface TaskCgroup {
  /** `cgroup.procs` files the wrapper writes its pid to (one per hierarchy). */
  readonly procsFiles: readonly string[];
  /** Sets the memory limit (bytes): the kernel's OOM killer then acts inside this cgroup only. */
  setMemoryLimit(bytes: number): void;
  /** Highest memory charge since the cgroup was made (bytes), or undefined when the kernel does not say. */
  peakBytes(): number | undefined;
  /** Memory charged now (bytes). */
  currentBytes(): number | undefined;
  /** CPU time of every process that ran in the cgroup, reaped or alive (seconds). */
  cpuSeconds(): number | undefined;
  /** How many processes the kernel's OOM killer has killed in it. */
  oomKills(): number;
  /** Whether its processes wait at the limit (cgroup v1 with the OOM killer off: see setMemoryLimit). */
  underOom?(): boolean;
  /**
   * Whether its charge reached the limit and was refused (cgroup v1): with the OOM killer off, memory the kernel
   * charges inside a system call (fork, a pipe, tmpfs) fails with ENOMEM instead of waiting.
   */
  limitRefused?(): boolean;
  /**
   * Whether its charge ever reached its own limit (v1 `memory.failcnt`, v2 `memory.events` `max`), or
   * undefined where the kernel does not say: what tells a kill at its own limit from one above it.
   */
  limitReached?(): boolean | undefined;
  /** The processes in it now (pids, from its first `cgroup.procs`), or undefined when it cannot be read. */
  pids(): number[] | undefined;
  /** Removes the cgroup (retried briefly: the last processes may still be leaving). True once gone. */
  remove(): boolean;
  /**
   * The same off the event loop: a cgroup's rmdir waits in the kernel (and EBUSY retries would block the
   * worker): the end of a task need not wait for it.
   */
  removeLater(): Promise<boolean>;
}

/** Where this worker makes its task cgroups. */
export interface CgroupHost {
  readonly mode: CgroupMode;
  create(name: string): TaskCgroup;
  /** Removes the worker's own directories (at stop). */
  dispose(): void;
}

interface Mount {
  /** Mount point. */
  dir: string;
  fstype: string;
  /** Super options: for cgroup v1 the controllers of the hierarchy. */
  options: string[];
}

function mounts(): Mount[] {
  const out: Mount[] = [];
  for (const line of readFileSync('/proc/self/mountinfo', 'latin1').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const right = line.slice(sep + 3).split(' ');
    const dir = (left[4] ?? '').replace(/\\040/g, ' ');
    out.push({ dir, fstype: right[0] ?? '', options: (right[2] ?? '').split(',') });
  }
  return out;
}

/** `/proc/self/cgroup`: hierarchy controllers → this process's path in it ('' key: the v2 hierarchy). */
function ownCgroups(): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of readFileSync('/proc/self/cgroup', 'latin1').trim().split('\n')) {
    const m = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!m) continue;
    for (const c of (m[1] as string).split(',')) out.set(c, m[2] as string);
  }
  return out;
}

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'latin1');
  } catch {
    return undefined;
  }
}

function readNumber(path: string): number | undefined {
  const t = readText(path);
  if (t === undefined) return undefined;
  const n = Number(t.trim());
  return Number.isFinite(n) ? n : undefined;
}

/** `key value` lines (memory.events, cpu.stat, memory.oom_control). */
function readKeyed(path: string, key: string): number | undefined {
  const t = readText(path);
  if (t === undefined) return undefined;
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(t);
  return m ? Number(m[1]) : undefined;
}

export function readPids(path: string): number[] | undefined {
  const t = readText(path);
  if (t === undefined) return undefined;
  return t
    .split('\n')
    .filter(l => l !== '')
    .map(Number);
}

function tryWrite(path: string, value: string): boolean {
  try {
    writeFileSync(path, value);
    return true;
  } catch {
    return false;
  }
}

/** rmdir, retried while the cgroup still holds exiting processes (EBUSY). */
function removeDir(dir: string): boolean {
  for (let i = 0; i < 20; i++) {
    try {
      rmdirSync(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY') return false;
      // Processes killed a moment ago are still leaving the cgroup: wait a little, synchronously (rare, short).
      sleepSync(25);
    }
  }
  return false;
}

/** removeDir without blocking: rmdir in libuv's thread pool, EBUSY retried on a timer. */
async function removeDirLater(dir: string): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    try {
      await rmdir(dir);
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') return true;
      if (code !== 'EBUSY') return false;
      await sleep(25);
    }
  }
  return false;
}

/** Removes child cgroups (task directories) and then the directory itself. */
function removeTree(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir, { withFileTypes: true })
      .filter(e => e.isDirectory())
      .map(e => e.name);
  } catch {
    return;
  }
  for (const e of entries) removeTree(join(dir, e));
  removeDir(dir);
}

/** Unlimited memory as cgroup v1 writes it (PAGE_COUNTER_MAX pages): anything this large is no limit. */
const NO_LIMIT = 2 ** 60;
/**
 * cgroup v1: how far above a task's memory limit its memory + swap limit is set (setMemoryLimit): a huge page,
 * the largest single charge, so that the memory counter always refuses first; a task may swap that much.
 */
const MEMSW_MARGIN = 2 * 1024 * 1024;

/** The memory cgroup directories this process is in, from its own up to (not including) the hierarchy's root. */
let memoryDirs: { dirs: string[]; v2: boolean } | null | undefined;

function findMemoryDirs(): { dirs: string[]; v2: boolean } | null {
  try {
    const all = mounts();
    const own = ownCgroups();
    const v2 = all.find(m => m.fstype === 'cgroup2');
    const v1 = all.find(m => m.fstype === 'cgroup' && m.options.includes('memory'));
    const [base, path, isV2] =
      v1 && own.has('memory')
        ? [v1.dir, own.get('memory') as string, false]
        : v2
          ? [v2.dir, own.get('') ?? '/', true]
          : [undefined, '/', false];
    if (base === undefined) return null;
    const dirs: string[] = [];
    for (let p = path; p !== '/' && p !== '.' && p !== ''; p = dirname(p)) dirs.push(join(base, p));
    return { dirs, v2: isV2 };
  } catch {
    return null;
  }
}

/**
 * The memory left to this process's cgroup, and the limit it is counted against: the tightest of its own
 * cgroup and its ancestors (a Slurm job's limit sits on the job's cgroup, above the step's), as limit less
 * usage, page cache (which the kernel drops before it kills) not counted as used. Undefined where no cgroup above it has a limit.
 * The node's MemAvailable says nothing of it: a worker in a 500 MB allocation started a task with 155 MB left,
 * and the kernel then killed the older task that had been running within its share (adversary 8 I10).
 */
export function memoryRoom(): { limitBytes: number; roomBytes: number } | undefined {
  if (memoryDirs === undefined) memoryDirs = findMemoryDirs();
  if (!memoryDirs) return undefined;
  let best: { limitBytes: number; roomBytes: number } | undefined;
  for (const dir of memoryDirs.dirs) {
    const v2 = memoryDirs.v2;
    const limitText = readText(join(dir, v2 ? 'memory.max' : 'memory.limit_in_bytes'))?.trim();
    if (limitText === undefined || limitText === 'max') continue;
    const limit = Number(limitText);
    if (!Number.isFinite(limit) || limit >= NO_LIMIT) continue;
    const usage = readNumber(join(dir, v2 ? 'memory.current' : 'memory.usage_in_bytes'));
    if (usage === undefined) continue;
    // Page cache, active or not, is the kernel's to drop before any OOM (a Slurm job's cache fills its cgroup
    // to the limit as it reads its inputs): counted as used, it held a worker idle for ever.
    const stat = join(dir, 'memory.stat');
    const prefix = v2 ? '' : 'total_';
    const cache =
      (readKeyed(stat, `${prefix}inactive_file`) ?? 0) + (readKeyed(stat, `${prefix}active_file`) ?? 0);
    const room = Math.max(0, limit - Math.max(0, usage - cache));
    if (!best || room < best.roomBytes) best = { limitBytes: limit, roomBytes: room };
  }
  return best;
}

/**
 * Finds where this process may make task cgroups, and proves it by making its own directory there.
 * Returns the host, or the reason there is none (the worker then samples /proc).
 */
export function openCgroupHost(workerTag: string): CgroupHost | { reason: string } {
  let all: Mount[];
  let own: Map<string, string>;
  try {
    all = mounts();
    own = ownCgroups();
  } catch (err) {
    return { reason: `cannot read /proc/self/mountinfo or cgroup: ${(err as Error).message}` };
  }
  const v2 = all.find(m => m.fstype === 'cgroup2');
  const v2Controllers = v2 ? (readText(join(v2.dir, own.get('') ?? '/', 'cgroup.controllers')) ?? '') : '';
  if (v2 && /\bmemory\b/.test(v2Controllers)) {
    const host = openV2(join(v2.dir, own.get('') ?? '/'), workerTag);
    if (!('reason' in host)) return host;
    return { reason: `cgroup v2: ${host.reason}` };
  }
  const mem = all.find(m => m.fstype === 'cgroup' && m.options.includes('memory'));
  const cpu = all.find(m => m.fstype === 'cgroup' && m.options.includes('cpuacct'));
  if (mem && cpu) {
    const host = openV1(
      join(mem.dir, own.get('memory') ?? '/'),
      join(cpu.dir, own.get('cpuacct') ?? '/'),
      workerTag,
    );
    if (!('reason' in host)) return host;
    return { reason: `cgroup v1: ${host.reason}` };
  }
  return { reason: 'no cgroup v2 memory controller and no cgroup v1 memory + cpuacct hierarchies' };
}

/**
 * Removes what workers that died without cleaning up (SIGKILL, node crash) left in `dir`: `jtm-<pid>`
 * directories (and, on cgroup v2, `jtm-<pid>-worker` leaves) whose process is gone. Empty cgroups cost the
 * kernel memory and would pile up on a node.
 */
function removeStale(dir: string): void {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const m = /^jtm-(\d+)(-worker)?$/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      readFileSync(`/proc/${m[1]}/stat`);
    } catch {
      removeTree(join(dir, name));
    }
  }
}

function makeDir(dir: string): string | undefined {
  try {
    mkdirSync(dir);
    return undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return undefined;
    return `cannot create ${dir}: ${(err as Error).message}`;
  }
}

function openV1(memOwn: string, cpuOwn: string, tag: string): CgroupHost | { reason: string } {
  removeStale(memOwn);
  removeStale(cpuOwn);
  const memBase = join(memOwn, tag);
  const cpuBase = join(cpuOwn, tag);
  const failed = makeDir(memBase) ?? makeDir(cpuBase);
  if (failed) {
    removeDir(memBase);
    removeDir(cpuBase);
    return { reason: failed };
  }
  return {
    mode: 'cgroup-v1',
    create(name: string): TaskCgroup {
      const mem = join(memBase, name);
      const cpu = join(cpuBase, name);
      const failure = makeDir(mem) ?? makeDir(cpu);
      if (failure) throw new Error(failure);
      let limit = 0;
      // The kernel refused a charge at the limit: its count of refusals, of memory or of memory + swap (the
      // latter not kept by recent kernels, hence setMemoryLimit's margin). Undefined: the kernel says nothing.
      const refusals = (): number | undefined => {
        const n = readNumber(join(mem, 'memory.failcnt'));
        const sw = readNumber(join(mem, 'memory.memsw.failcnt'));
        return n === undefined && sw === undefined ? undefined : (n ?? 0) + (sw ?? 0);
      };
      return {
        procsFiles: [join(mem, 'cgroup.procs'), join(cpu, 'cgroup.procs')],
        setMemoryLimit(bytes) {
          limit = bytes;
          if (!tryWrite(join(mem, 'memory.limit_in_bytes'), String(bytes)))
            throw new Error(`cannot set memory.limit_in_bytes in ${mem}`);
          // Memory + swap: without it a limited task could swap instead of being stopped (the file is absent
          // where swap is not accounted). A little above the memory limit, so that a charge at the limit is
          // refused by the memory counter, whose refusals memory.failcnt counts: memory + swap is tried first,
          // and at the same limit it refused every charge, in a count (memory.memsw.failcnt) that recent kernels
          // no longer keep (0 after a real ENOMEM on Linux 6.18, adversary 33 F1).
          tryWrite(join(mem, 'memory.memsw.limit_in_bytes'), String(bytes + MEMSW_MARGIN));
          // The whole task stops at its limit, not its biggest process: with the OOM killer on, the kernel
          // killed the allocating tool and the rest of a Cromwell script ran on and wrote rc 0, a success for
          // Cromwell (adversary 7, H7; v2 has memory.oom.group). Off, its processes wait at the limit
          // (killable), the watch sees under_oom and kills the whole tree, and JTM's rc 247 stands.
          tryWrite(join(mem, 'memory.oom_control'), '1');
        },
        // The kernel marks under_oom on every cgroup below one that is out of memory (a Slurm step's): only a
        // task at its own limit is over it.
        // A refusal counted, of memory or of memory + swap: the kernel's own evidence that the limit was hit. A
        // charge that merely came near the limit is none: `alloc 185 MB; exit 1` under 200M, never refused
        // anything (failcnt 0), was outofresource with Cromwell's memory retry (adversary 33 F1).
        // Not when half the limit is still page cache the kernel could reclaim (file pages stay charged after
        // the processes end): it reclaims those before it refuses a charge, so such a task reached its limit
        // with cache, e.g. a `grep` of a large file that found nothing, and failed for its own reason. Counted
        // outofresource, it got rc 247 and Cromwell's memory retry (adversary 20 F6).
        limitRefused: () => {
          if ((refusals() ?? 0) === 0) return false;
          const stat = join(mem, 'memory.stat');
          // Dirty and under-writeback pages are not reclaimable at once: not counted.
          const cache =
            (readKeyed(stat, 'total_active_file') ?? 0) +
            (readKeyed(stat, 'total_inactive_file') ?? 0) -
            (readKeyed(stat, 'total_dirty') ?? 0) -
            (readKeyed(stat, 'total_writeback') ?? 0);
          return cache < limit / 2;
        },
        // Reached, for a kill's reason (its own limit, or the memory above it): a refusal counted, or a peak
        // near the limit.
        limitReached: () => {
          const n = refusals();
          const peak = readNumber(join(mem, 'memory.max_usage_in_bytes'));
          if (n === undefined && peak === undefined) return undefined;
          return (n ?? 0) > 0 || (peak ?? 0) >= limit * 0.9;
        },
        underOom: () =>
          readKeyed(join(mem, 'memory.oom_control'), 'under_oom') === 1 &&
          (readNumber(join(mem, 'memory.usage_in_bytes')) ?? 0) >= limit * 0.98,
        peakBytes: () => readNumber(join(mem, 'memory.max_usage_in_bytes')),
        currentBytes: () => readNumber(join(mem, 'memory.usage_in_bytes')),
        cpuSeconds: () => {
          const ns = readNumber(join(cpu, 'cpuacct.usage'));
          return ns === undefined ? undefined : ns / 1e9;
        },
        oomKills: () => readKeyed(join(mem, 'memory.oom_control'), 'oom_kill') ?? 0,
        pids: () => readPids(join(mem, 'cgroup.procs')),
        remove: () => removeDir(mem) && removeDir(cpu),
        removeLater: async () =>
          (await Promise.all([removeDirLater(mem), removeDirLater(cpu)])).every(Boolean),
      };
    },
    dispose() {
      removeTree(memBase);
      removeTree(cpuBase);
    },
  };
}

/**
 * cgroup v2: a cgroup with processes may not hand controllers to children (the "no internal processes"
 * rule), so the worker first moves itself into a leaf of its own cgroup, then enables memory for a sibling
 * directory that holds the task cgroups. When other processes share the worker's cgroup (a login shell, a
 * Slurm step's batch script) the controller cannot be enabled and the worker keeps to /proc sampling.
 */
function openV2(own: string, tag: string): CgroupHost | { reason: string } {
  const enabled = (dir: string): boolean =>
    /\bmemory\b/.test(readText(join(dir, 'cgroup.subtree_control')) ?? '');
  if (!enabled(own) && !tryWrite(join(own, 'cgroup.subtree_control'), '+memory')) {
    const leaf = join(own, `${tag}-worker`);
    const failed = makeDir(leaf);
    if (failed) return { reason: failed };
    if (!tryWrite(join(leaf, 'cgroup.procs'), String(process.pid))) {
      removeDir(leaf);
      return { reason: `cannot move the worker into ${leaf}` };
    }
    if (!tryWrite(join(own, 'cgroup.subtree_control'), '+memory')) {
      // Other processes share the cgroup: undo and give up.
      tryWrite(join(own, 'cgroup.procs'), String(process.pid));
      removeDir(leaf);
      return { reason: `cannot enable the memory controller in ${own} (other processes live in it)` };
    }
  }
  removeStale(own);
  const base = join(own, tag);
  const failed = makeDir(base);
  if (failed) return { reason: failed };
  tryWrite(join(base, 'cgroup.subtree_control'), '+memory');
  if (!enabled(base)) {
    removeDir(base);
    return { reason: `cannot enable the memory controller in ${base}` };
  }
  return {
    mode: 'cgroup-v2',
    create(name: string): TaskCgroup {
      const dir = join(base, name);
      const failure = makeDir(dir);
      if (failure) throw new Error(failure);
      // The kernel kills the whole task at once when it is over its limit, never a part of it.
      tryWrite(join(dir, 'memory.oom.group'), '1');
      let sampledPeak = 0;
      return {
        procsFiles: [join(dir, 'cgroup.procs')],
        setMemoryLimit(bytes) {
          if (!tryWrite(join(dir, 'memory.max'), String(bytes)))
            throw new Error(`cannot set memory.max in ${dir}`);
          tryWrite(join(dir, 'memory.swap.max'), '0');
        },
        // memory.peak exists since Linux 5.19; before that, the highest memory.current this worker read.
        peakBytes: () => readNumber(join(dir, 'memory.peak')) ?? (sampledPeak || undefined),
        currentBytes: () => {
          const now = readNumber(join(dir, 'memory.current'));
          if (now !== undefined) sampledPeak = Math.max(sampledPeak, now);
          return now;
        },
        cpuSeconds: () => {
          const us = readKeyed(join(dir, 'cpu.stat'), 'usage_usec');
          return us === undefined ? undefined : us / 1e6;
        },
        limitReached: () => {
          const n = readKeyed(join(dir, 'memory.events'), 'max');
          return n === undefined ? undefined : n > 0;
        },
        oomKills: () =>
          Math.max(
            readKeyed(join(dir, 'memory.events'), 'oom_kill') ?? 0,
            readKeyed(join(dir, 'memory.events'), 'oom_group_kill') ?? 0,
          ),
        pids: () => readPids(join(dir, 'cgroup.procs')),
        remove: () => removeDir(dir),
        removeLater: () => removeDirLater(dir),
      };
    },
    dispose() {
      removeTree(base);
    },
  };
}
