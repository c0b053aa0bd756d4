import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';

import type { Logger } from '../logger.js';
import { openCgroupHost, type CgroupHost, type CgroupMode, type TaskCgroup } from './cgroup.js';
import { formatBytes } from './memory-limit.js';
import { readProportionalSet, readStatusMemory, type ProcInfo } from './proc-files.js';
import { CGROUP_PROCS_VAR } from './pty-protocol.js';
import type { SampleState } from './resource-sample.js';

/** How a worker measures its tasks: the kernel's per-task cgroup, or /proc sampling where it has none. */
export type AccountingMode = CgroupMode | 'procfs';

/** Environment variable through which a task's wrapper learns the cgroup.procs files to join. */
export { CGROUP_PROCS_VAR };

/**
 * Environment variable naming the file where a task's wrapper writes bash's `times` when the command ends (/proc
 * mode only): the CPU time of every child it waited for, which /proc loses once the wrapper itself is reaped.
 */
export const TIMES_FILE_VAR = 'JTM_TIMES_FILE';

/**
 * Set for a task accounted from /proc: its wrapper makes the task's root the subreaper of its orphans
 * (task-exec.c become_subreaper), so that a child that detached and cleared its environment stays in its tree.
 */
export const SUBREAPER_VAR = 'JTM_SUBREAPER';

/** How long a task's wrapper has to join its cgroup before the task is accounted from /proc instead. */
const JOIN_GRACE_MS = 2000;

/** The pty host's executable (Node), which a task's process is until its fork has exec'd the wrapper. */
let hostExe: string | undefined;

/** Whether `pid` is still the pty host's fork, not yet exec'd into the task's wrapper. */
function isUnexecedFork(pid: number): boolean {
  try {
    hostExe ??= realpathSync(process.execPath);
    return readlinkSync(`/proc/${pid}/exe`) === hostExe;
  } catch {
    return false;
  }
}

/**
 * /proc mode, a tree of several processes: how often its proportional set size is read again while its RSS
 * sum counts shared pages (copy-on-write pages become private as they are written, without the RSS sum
 * moving), and the share of one core the readings may take (each waits this many times its own cost: its CPU).
 */
const PSS_REFRESH_MS = 10_000;
const PSS_MIN_GAP_MS = 1000;
const PSS_BUDGET_FACTOR = 20;
/**
 * The wait between two readings while the tree's RSS sum is over its limit or has grown by half since the last
 * reading: this many times the last reading's cost. With the budget's wait
 * (20 × and 1 s at least), 100 processes of 5 MB that lived 1.5 s were seen during their ramp only (292 MB of
 * 510 recorded, and a 450 MB limit not enforced: adversary 20 F2, F3).
 */
const PSS_URGENT_FACTOR = 2;
// No floor of its own: at the next watch (JTM_WATCH_INTERVAL) when the last reading was cheap. With a 250 ms floor, a
// reading during the ramp of two 150 MB processes held the next one a watch past the start of their 0.6 s plateau on
// a loaded node; it began as one of them exited and read 163 MB, and a 200 MB limit let them run (adversary 32 F2,
// 1 of 24 runs).
/** A tree's RSS sum this many times the last reading's: it grew, and the last reading says little. */
const PSS_GROWTH = 1.5;
/** A reading that has not returned after this long is given up on. */
const PSS_STUCK_MS = 10_000;

/**
 * The accounting of one worker: which mode it runs in (logged at start, and stored in each task record as
 * `accounting`), and the per-task accounting of each task it starts.
 */
export class Accounting {
  private constructor(
    readonly mode: AccountingMode,
    /** Why the worker is not using cgroups (procfs mode). */
    readonly reason: string | undefined,
    private readonly host: CgroupHost | undefined,
    private readonly log: Logger,
  ) {}

  /** `forceProcfs`: JTM_ACCOUNTING=procfs. */
  static open(workerTag: string, forceProcfs: boolean, log: Logger): Accounting {
    if (forceProcfs) return new Accounting('procfs', 'JTM_ACCOUNTING=procfs', undefined, log);
    const host = openCgroupHost(workerTag);
    if ('reason' in host) return new Accounting('procfs', host.reason, undefined, log);
    return new Accounting(host.mode, undefined, host, log);
  }

  /**
   * The accounting of a task about to start, with its memory limit (bytes) if it has one. `timesFile`: where
   * its wrapper may write `times` (used in /proc mode).
   */
  forTask(id: number, limitBytes: number | undefined, timesFile?: string): TaskAccounting {
    if (this.host) {
      try {
        const cg = this.host.create(`task-${id}-${Date.now().toString(36)}`);
        if (limitBytes !== undefined) cg.setMemoryLimit(limitBytes);
        return new TaskAccounting(this.mode, limitBytes, cg);
      } catch (err) {
        this.log.warn({ task: id, err }, 'no cgroup for this task: /proc sampling');
      }
    }
    return new TaskAccounting('procfs', limitBytes, undefined, timesFile);
  }

  dispose(): void {
    this.host?.dispose();
  }
}

/**
 * One task's resource truth. In a cgroup, the kernel's own figures (peak memory charge, CPU time of every
 * process that ever ran in it, OOM kills). Without one, /proc: the tree's memory at each watch (observeTree:
 * shared pages counted once), and its CPU time including reaped children (cutime/cstime of the processes that
 * waited for them), both kept as maxima.
 */
export class TaskAccounting {
  private joined = false;
  /** The wrapper was seen in the cgroup (`joined` is also set for a task that ended before it could be seen). */
  private seenInside = false;
  /** When (monotonic ms) the wrapper was first seen running outside the cgroup (verifyJoined). */
  private wrapperSeenMs: number | undefined;
  private peakBytes = 0;
  private cpuSeconds = 0;
  /** /proc mode: the CPU the task's shell said it and the children it waited for used (readShellExit). */
  private shellSeconds = 0;
  private overBytes: number | undefined;
  /** /proc mode: the wrapper's figure of a pass of the limit no look saw (passedUnseen). */
  private unseenBytes: number | undefined;
  private oomKilled = false;
  /** The kernel's peak charge was read from the task's cgroup: it is the peak, whatever the samples summed. */
  private kernelPeak = false;
  /**
   * /proc mode: at the last look, the tree's RSS sum was over the limit, which only a proportional-set reading
   * can confirm: the watch comes back at its interval meanwhile, whatever its CPU budget (sampler.ts).
   */
  private suspect = false;
  /** /proc mode: the last proportional-set reading of the tree (see observeTree). */
  private pss: {
    inFlight: boolean;
    startedAt: number;
    at: number;
    nextAt: number;
    rssAt: number;
    /** The held sum (anonymous + shmem) at the last reading. */
    heldAt: number;
    /** How long the last reading took (ms). */
    took: number;
    bytes?: number;
    /** The reading's held memory (anonymous + shmem): what the limit is judged on. */
    heldBytes?: number;
  } = {
    inFlight: false,
    startedAt: 0,
    at: 0,
    nextAt: 0,
    rssAt: 0,
    heldAt: 0,
    took: 0,
  };
  /** /proc mode: the most file-backed resident memory each process was seen to map (see observeTree). */
  private readonly fileSeen = new Map<number, number>();
  /** /proc mode: the most file-backed resident memory any one process was seen to map. */
  private fileMax = 0;

  constructor(
    public mode: AccountingMode,
    readonly limitBytes: number | undefined,
    private cgroup: TaskCgroup | undefined,
    private readonly timesFile?: string,
  ) {}

  /**
   * Checks once that the task's wrapper (`pid`) did join its cgroup. If it could not (the cgroup was removed
   * under the worker, a write was refused), the task is accounted from /proc instead: returns false then.
   * `nowMs`: a monotonic clock's time.
   */
  verifyJoined(pid: number, nowMs: number): boolean {
    if (this.joined || !this.cgroup) return true;
    const procs = this.cgroup.procsFiles[0];
    let members: string[] = [];
    try {
      members = readFileSync(procs as string, 'latin1').split('\n');
    } catch {
      // the cgroup is gone
    }
    // Not there and still alive: it has not joined. (A task that already ended cannot be told apart: its
    // figures are kept.)
    if (members.includes(String(pid))) this.seenInside = true;
    if (this.seenInside || !existsSync(`/proc/${pid}`)) {
      this.joined = true;
      return true;
    }
    // On a loaded node the wrapper may not have run its first line yet: give it time before deciding, counted
    // from when it is the wrapper. Until the pty host's fork has exec'd it, it is a copy of the host (Node): that
    // took over 2 s of the task's age under a full test run's load, and a task so taken out of its cgroup lost
    // the kernel's limit (two 150 MB processes under 200M ended success, adversary 32 F2's row, 1 of 1,186).
    if (isUnexecedFork(pid)) return true;
    this.wrapperSeenMs ??= nowMs;
    if (nowMs - this.wrapperSeenMs < JOIN_GRACE_MS) return true;
    this.joined = true;
    const cg = this.cgroup;
    this.cgroup = undefined;
    this.mode = 'procfs';
    cg.remove();
    return false;
  }

  /**
   * The processes in the task's cgroup, when it holds the task: the wrapper joined it before the command ran
   * and a child starts in its parent's cgroup, so every process the task started is there, detached or not
   * (leaving takes a write to another cgroup's cgroup.procs). Undefined when there is no cgroup or nothing
   * shows that the wrapper joined it (no process in it and no memory ever charged to it): then the task's
   * processes are looked for in /proc by their token.
   */
  memberPids(): number[] | undefined {
    if (!this.cgroup) return undefined;
    const pids = this.cgroup.pids();
    if (pids === undefined) return undefined;
    if (pids.length > 0 || this.seenInside || (this.cgroup.peakBytes() ?? 0) > 0) return pids;
    return undefined;
  }

  /** What the task record shows of it (`status --json`). */
  recordFields(): { accounting: AccountingMode; mem_limit_mb?: number } {
    return {
      accounting: this.mode,
      mem_limit_mb: this.limitBytes === undefined ? undefined : Math.round(this.limitBytes / 1048576),
    };
  }

  /** Variables for the task's wrapper (it joins the cgroup before running the command). */
  get env(): Record<string, string> {
    if (this.cgroup) return { [CGROUP_PROCS_VAR]: this.cgroup.procsFiles.join(' ') };
    return this.timesFile ? { [TIMES_FILE_VAR]: this.timesFile, [SUBREAPER_VAR]: '1' } : {};
  }

  /**
   * /proc mode: reads (and removes), once, what the task's shell wrote as it exited (task-argv.ts PREAMBLE): its
   * `times` — its own CPU and that of every child it waited for, including children that lived and died between
   * two watches and those reaped after the last one, kept as a floor under the sampled figure (which also sees
   * processes that escaped the shell) —, the largest high-water mark of the processes it waited for (written by
   * the wrapper that waited for the shell), and the children it still had, the orphans it was the subreaper of,
   * returned for the run to end (with the time since boot when they were listed). Nothing there (killed,
   * `exec`, no write): the sampled figure stands.
   */
  async readShellExit(): Promise<{ children: number[]; uptimeS: number } | undefined> {
    if (!this.timesFile) return undefined;
    let text: string;
    try {
      text = await readFile(this.timesFile, 'latin1');
      await unlink(this.timesFile);
    } catch {
      return undefined; // not written: the command was killed, exec'd away, or its shell exited early
    }
    const secs = [...text.matchAll(/(\d+)m([\d.]+)s/g)].reduce(
      (t, m) => t + Number(m[1]) * 60 + Number(m[2]),
      0,
    );
    if (Number.isFinite(secs)) {
      this.shellSeconds = secs;
      this.cpuSeconds = Math.max(this.cpuSeconds, secs);
    }
    // The largest high-water mark of a process the shell waited for (task-exec.c wait_and_report), in KiB: the
    // peak. Over the limit, it is said with the task's outcome, not made an outofresource: the shell and its
    // command ended by themselves, and the script wrote its own rc (Cromwell's), which JTM never replaces; an
    // outofresource beside an rc of 0 had Cromwell record a success JTM called a failure (adversary 23 F3).
    const maxrss = /^maxrss (\d+)$/m.exec(text);
    if (maxrss) {
      const bytes = Number(maxrss[1]) * 1024;
      this.peakBytes = Math.max(this.peakBytes, bytes);
      // Judged, as the looks judge, on memory held: the figure counts mapped file pages too, so the most any one
      // process was seen to map is taken off (adversary 33 F2: a 600 MB mapped file was "a pass").
      const heldBytes = bytes - this.fileMax;
      if (this.limitBytes !== undefined && heldBytes > this.limitBytes && this.overBytes === undefined)
        this.unseenBytes = bytes;
    }
    // The CPU of the shell and of every process it waited for (the wrapper's wait4, user and system seconds):
    // exact where the shell's `times` is missing (a command exec'd in its place) or read before its end.
    const cpu = /^cpu ([\d.]+) ([\d.]+)$/m.exec(text);
    if (cpu) {
      const secs = Number(cpu[1]) + Number(cpu[2]);
      if (Number.isFinite(secs)) {
        this.shellSeconds = Math.max(this.shellSeconds, secs);
        this.cpuSeconds = Math.max(this.cpuSeconds, secs);
      }
    }
    const listed = /^children ([\d.]+)((?: \d+)*) ?$/m.exec(text);
    if (!listed) return undefined;
    return { children: (listed[2] ?? '').split(' ').filter(Boolean).map(Number), uptimeS: Number(listed[1]) };
  }

  /**
   * /proc mode, at the task's end: what its processes still alive (leftovers, about to be killed) used — each one's
   * high-water mark, and their CPU, which the shell's `times` does not hold (it never waited for them). A child
   * left running as the shell exited was killed unread: a 121 MB child was recorded 4–67 MB, or not at all when no
   * watch had come in its life (adversary 14 F2). In a cgroup the kernel's figures hold it already.
   */
  observeLeftovers(procs: readonly ProcInfo[]): void {
    if (this.cgroup || procs.length === 0) return;
    let ticks = 0;
    for (const p of procs) {
      const m = readStatusMemory(p.pid);
      const hwm = m?.hwm ?? p.rssBytes;
      this.peakBytes = Math.max(this.peakBytes, hwm);
      ticks += p.cpuTicks;
      // Over the limit, the pass is said with the task's outcome (task-run.ts, the leftovers' note): a child
      // holding 400 MB under a 300M limit was recorded with its peak on a success and no word (adversary 33 F3).
      const file = Math.max(this.fileSeen.get(p.pid) ?? 0, m?.file ?? 0);
      const held = Math.max(m?.held ?? p.rssBytes, hwm - file);
      if (this.limitBytes !== undefined && held > this.limitBytes) this.overBytes ??= held;
    }
    this.cpuSeconds = Math.max(this.cpuSeconds, this.shellSeconds + ticks / 100);
  }

  /**
   * /proc mode: a process went over the limit between two looks and ended before the next (the wrapper's figure,
   * read once the shell had ended): nothing was left to stop.
   */
  passedUnseen(): string | undefined {
    if (this.unseenBytes === undefined || this.limitBytes === undefined) return undefined;
    return `a process went over the memory limit of ${formatBytes(this.limitBytes)} (peak ${formatBytes(this.unseenBytes)}) and ended between two looks: not stopped in /proc mode (in a cgroup the kernel would have stopped it)`;
  }

  /** Over its limit by the last look's RSS sum, not yet confirmed either way (see `suspect`). */
  get overLimitSuspected(): boolean {
    return this.suspect;
  }

  /** Whether the task must be watched closely (every JTM_WATCH_INTERVAL): /proc mode, or a limit to enforce. */
  get watched(): boolean {
    return this.mode === 'procfs' || this.limitBytes !== undefined || !this.joined;
  }

  /**
   * One look at the task (`procs`: its live tree, in /proc mode). Returns true when the task is over its
   * memory limit: killed by the kernel's OOM killer in its cgroup, or, without a cgroup, a resident total
   * above the limit.
   */
  observe(procs: readonly ProcInfo[] | undefined): boolean {
    this.suspect = false;
    if (this.cgroup) {
      this.cgroup.currentBytes();
      return this.overLimit();
    }
    if (!procs || procs.length === 0) return this.overLimit();
    this.observeTree(procs);
    return this.overLimit();
  }

  /**
   * /proc mode. One process: its RSS and high-water mark (VmHWM, which sees a peak between two watches) are its
   * memory. Several: their RSS sum counts every page they share once per process — a parent that loaded 200 MB
   * and forked four workers reads 1 GB for ≈ 210 MB of memory, and a limit of 500 MB would kill it. So the
   * tree's figure is its proportional set size (readProportionalSet), read when the held sum grows past what the
   * last reading saw, passes the limit, or every PSS_REFRESH_MS while pages are shared; the peak is the larger of
   * that and any one process's high-water mark, and the limit is passed only when the reading says so.
   * The limit is judged on the memory the tree holds (anonymous and shmem pages), never on the page cache it maps:
   * a task that mapped a 600 MB cached file under a 200M limit was killed, where cgroup mode let it succeed
   * (adversary 33 F2). The recorded peak counts the mapped file pages, as cgroup mode's does.
   */
  private observeTree(procs: readonly ProcInfo[]): void {
    let hwmMax = 0;
    let heldHwmMax = 0;
    let hwmSum = 0;
    let heldHwmSum = 0;
    let rss = 0;
    let held = 0;
    let ticks = 0;
    for (const p of procs) {
      const m = readStatusMemory(p.pid);
      const hwm = m?.hwm ?? p.rssBytes;
      // The file pages it maps, the most seen: its high-water mark less that is what it held at its peak, at
      // least (no kernel figure says how much of the peak was file pages).
      const file = Math.max(this.fileSeen.get(p.pid) ?? 0, m?.file ?? 0);
      this.fileSeen.set(p.pid, file);
      this.fileMax = Math.max(this.fileMax, file);
      const heldNow = m?.held ?? p.rssBytes;
      const heldHwm = Math.max(heldNow, hwm - file);
      hwmMax = Math.max(hwmMax, hwm);
      heldHwmMax = Math.max(heldHwmMax, heldHwm);
      hwmSum += hwm;
      heldHwmSum += heldHwm;
      rss += p.rssBytes;
      held += heldNow;
      ticks += p.cpuTicks;
    }
    this.cpuSeconds = Math.max(this.cpuSeconds, ticks / 100);
    // A process's high-water mark over the limit is a pass of it, though it came down before this look (the
    // kernel would have stopped it in cgroup mode): `--mem-limit 100M` and a 300 MB burst freed at once ended
    // `success` with a recorded peak of 300 MB, the record contradicting itself (adversary 20 F11).
    if (procs.length === 1) {
      this.peakBytes = Math.max(this.peakBytes, hwmSum, rss);
      const top = Math.max(heldHwmSum, held);
      if (this.limitBytes !== undefined && top > this.limitBytes) this.overBytes ??= top;
      return;
    }
    this.peakBytes = Math.max(this.peakBytes, hwmMax);
    if (this.limitBytes !== undefined && heldHwmMax > this.limitBytes) this.overBytes ??= heldHwmMax;
    const pss = this.pss;
    const now = Date.now();
    const overHeld = this.limitBytes !== undefined && held > this.limitBytes;
    // Not while the last reading said it is under (pages shared between its processes) and it has not grown
    // since: such a tree would otherwise be watched at the interval for its whole life.
    this.suspect =
      overHeld &&
      !(pss.heldBytes !== undefined && pss.heldBytes <= (this.limitBytes ?? 0) && held <= pss.heldAt * 1.1);
    const wanted =
      overHeld ||
      held > pss.heldAt * 1.1 ||
      rss > pss.rssAt * 1.1 ||
      (now - pss.at >= PSS_REFRESH_MS && rss > (pss.bytes ?? 0) * 1.1);
    // Over the limit by its held sum, or grown by half, the budget's wait is cut: only a reading can tell, a tree
    // over it for real must not run on for the 20 × a long reading takes (14 s for 20 GB), and a peak reached
    // by many processes together must be read while they hold it.
    // `suspect`, not overHeld: a tree the last reading found under its limit (shared pages) that has not grown
    // since keeps the budget's pace, or its page tables were walked every 250 ms for its whole life.
    const urgent = this.suspect || held > pss.heldAt * PSS_GROWTH;
    const due = urgent ? Math.min(pss.nextAt, pss.at + pss.took * PSS_URGENT_FACTOR) : pss.nextAt;
    if (!wanted || (pss.inFlight && now - pss.startedAt < PSS_STUCK_MS) || now < due) return;
    // A reading that never returns (smaps_rollup waits for the process's memory map lock, e.g. behind a hung
    // NFS page fault) is given up after PSS_STUCK_MS: the held sum, an upper bound, decides until one returns.
    if (pss.inFlight) {
      if (overHeld) this.overBytes ??= held;
      return;
    }
    pss.inFlight = true;
    pss.startedAt = now;
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    void readProportionalSet(procs).then(reading => {
      // The reading's cost is its CPU (the kernel's walk of each process's page tables, in libuv's threads), not its
      // wall time: on a loaded node a 3 ms reading took 75 ms of wall time, its budget held the next one back
      // 1.5 s, and 100 processes holding 680 MB together for 1.5 s were recorded at 447 MB (a full run beside an
      // adversary, s19). The process's CPU over the wait also counts what else ran meanwhile: the smaller of the two.
      const cpu = process.cpuUsage(cpu0);
      const took = Math.min(performance.now() - t0, (cpu.user + cpu.system) / 1000);
      pss.inFlight = false;
      pss.at = Date.now();
      pss.nextAt = pss.at + Math.max(PSS_MIN_GAP_MS, took * PSS_BUDGET_FACTOR);
      pss.took = took;
      pss.rssAt = rss;
      pss.heldAt = held;
      // Unreadable (no smaps_rollup): the sums, upper bounds, as before.
      const tree = reading?.total ?? rss;
      const treeHeld = reading?.held ?? held;
      pss.bytes = tree;
      pss.heldBytes = treeHeld;
      this.peakBytes = Math.max(this.peakBytes, tree);
      if (this.limitBytes !== undefined && treeHeld > this.limitBytes) this.overBytes ??= treeHeld;
    });
  }

  /**
   * Whether the task went over its limit (the kernel killed in its cgroup, its processes wait at the limit, or
   * the watch saw it). `end`: the task's command has ended, and whether it failed: one that reached its limit
   * and was refused memory there (cgroup v1: a fork or a pipe got ENOMEM) failed of it. (Not one that ended with half its
   * limit still in page cache: cgroup.ts limitRefused.) Without a limit of its own, the kernel still kills in the task's cgroup when the memory above it
   * (a Slurm job's cgroup, the node) runs out: a task that lost a process so lost part of its work, whatever its
   * exit code (a script whose tool was killed may go on and exit 0); looked for at its end (no watch for it).
   */
  overLimit(end?: { failed: boolean }): boolean {
    if (this.cgroup && !this.oomKilled) {
      if (this.limitBytes !== undefined)
        this.oomKilled =
          this.cgroup.oomKills() > 0 ||
          this.cgroup.underOom?.() === true ||
          (end?.failed === true && this.cgroup.limitRefused?.() === true);
      else if (end) this.oomKilled = this.cgroup.oomKills() > 0;
    }
    return this.oomKilled || this.overBytes !== undefined;
  }

  /**
   * "memory limit 4 GB exceeded: peak 4.3 GB"; without a limit of its own, that the kernel killed in it when
   * the memory where the worker runs ran out.
   */
  limitReason(): string {
    const peak = Math.max(this.usage().peakBytes, this.overBytes ?? 0);
    const killedAbove = `killed by the kernel's OOM killer: the memory where the worker runs ran out`;
    if (this.limitBytes === undefined)
      return `${killedAbove} (no limit of its own; peak ${formatBytes(peak)})`;
    // Killed in its cgroup well below its own limit: the memory above it (the allocation's cgroup, the node) ran
    // out. "memory limit 1 GB exceeded: peak 417 MB" contradicted itself and sent the user to --mem-limit.
    // Whether its own limit was reached: the kernel's count where it keeps one (a peak sampled between two
    // readings of memory.current, on v2 kernels without memory.peak, misses a burst), else the peak.
    const reached = this.cgroup?.limitReached?.() ?? peak >= this.limitBytes * 0.9;
    if (this.oomKilled && this.overBytes === undefined && !reached)
      return `${killedAbove} (its own limit ${formatBytes(this.limitBytes)} was not reached; peak ${formatBytes(peak)})`;
    return `memory limit ${formatBytes(this.limitBytes)} exceeded: peak ${formatBytes(peak)}`;
  }

  /** Peak memory (bytes) and CPU time (s) of the whole task so far. */
  usage(): { peakBytes: number; cpuSeconds: number } {
    if (this.cgroup) {
      const charged = this.cgroup.peakBytes();
      if (charged !== undefined) this.kernelPeak = true;
      this.peakBytes = Math.max(charged ?? 0, this.peakBytes);
      this.cpuSeconds = Math.max(this.cgroup.cpuSeconds() ?? 0, this.cpuSeconds);
    }
    return { peakBytes: this.peakBytes, cpuSeconds: this.cpuSeconds };
  }

  /**
   * The sampler's state with this accounting's figures: the task record's peak_rss_mb and cpu_time_s. The peak
   * is this accounting's (the cgroup's charge, or the watches' figure in /proc mode), not the samples' RSS sums,
   * which count shared pages once per process; the samples' figure stands only where nothing was measured here.
   * It is at least what one process of the task held resident in a sample: a cgroup is not charged for pages
   * another cgroup brought into the page cache first, so a task that mapped a 300 MB reference file someone had
   * read before showed a peak of 7 MB (adversary 20 F1).
   */
  apply(state: SampleState | undefined): SampleState {
    const u = this.usage();
    const measured = this.kernelPeak || u.peakBytes > 0;
    const oneProcess = state?.peakProcessBytes ?? 0;
    return {
      at: state?.at ?? Date.now(),
      cpuTicks: Math.max(state?.cpuTicks ?? 0, Math.round(u.cpuSeconds * 100)),
      peakRssBytes: measured ? Math.max(u.peakBytes, oneProcess) : (state?.peakRssBytes ?? 0),
      peakProcessBytes: oneProcess,
    };
  }

  /** Takes the final figures and removes the task's cgroup, in the background (its processes are gone by now). Idempotent. */
  close(): void {
    if (!this.cgroup) return;
    this.overLimit();
    this.usage();
    const cg = this.cgroup;
    this.cgroup = undefined;
    // Not waited for: the figures are taken; what is left in it is gone or leaving (removed at worker stop
    // otherwise, with the worker's own directory).
    void cg.removeLater().catch(() => false);
  }
}
