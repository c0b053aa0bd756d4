import { InvalidInputError } from '../errors.js';
import { parseDurationOr } from '../durations.js';
import { TaskStatus, type TaskStatusName } from '../tasks/status.js';
import type { TaskRecord } from '../store/task-record.js';
import type { ResourceSample } from '../tasks/resource-format.js';
import { programOf } from './program-of.js';
import { counted } from '../plural.js';

/** What a report is about: tasks of a pool, of a Cromwell workflow, active since a time. */
export interface ReportFilter {
  pool?: string;
  /** Cromwell workflow id (full or its first 8 characters, as in the `-jid` job name). */
  workflow?: string;
  /** Epoch ms: tasks still running or ended since then. */
  since?: number;
}

export interface Spread {
  count: number;
  mean: number;
  p50: number;
  p95: number;
  max: number;
}

export interface FailedTask {
  id: number;
  status_name: TaskStatusName;
  reason: string;
  exit_code?: number;
  pool: string;
  group: string;
  attempts: number;
  ended_at?: number;
}

/** Tasks of one Cromwell call (or of one command when there is no `-jid`). */
export interface TaskGroup {
  name: string;
  kind: 'call' | 'command';
  tasks: number;
  by_status: Partial<Record<TaskStatusName, number>>;
  wall_s: Spread | null;
  /** cpu_time / (wall × cpus) over the group's finished tasks with usage; null without usage. */
  cpu_efficiency: number | null;
  cpus: number;
  /** True when no pool spec said how many CPUs the task had: 1 is assumed. */
  cpus_assumed: boolean;
  peak_rss_mb: number | null;
  /** Memory per worker asked of Slurm (pool spec mem / workers per node), MB; null for manual pools. */
  mem_request_mb: number | null;
  suggestion: string;
}

export interface TimelineBar {
  row: number;
  id: number;
  start: number;
  end: number;
  status_name: TaskStatusName;
}

/** Why a task is among `heaviest`: its peak memory, its CPU time, or that it has been running longest. */
export type HeavyWhy = 'memory' | 'cpu' | 'running';

export interface HeavyPick {
  id: number;
  why: HeavyWhy;
}

export interface HeavyTask {
  id: number;
  group: string;
  status_name: TaskStatusName;
  why: HeavyWhy;
  peak_rss_mb: number | null;
  cpu_time_s: number | null;
  /** Its run's length (s): from start to end, or to the report's time while it runs; null if it never started. */
  run_s: number | null;
  /** Seconds since the task started, CPU load (% of one core), resident memory (MB), one per sample. */
  samples: { t: number[]; cpu: number[]; mem_mb: number[] };
}

export interface ReportData {
  generated_at: number;
  filter: ReportFilter;
  /** Tasks, not counting `never_committed`'s. */
  tasks: number;
  /** Records of submits that never committed (neverCommitted): none ran, counted apart from everything else. */
  never_committed: number;
  by_status: Partial<Record<TaskStatusName, number>>;
  wall_s: Spread | null;
  queue_wait_s: Spread | null;
  attempts: { retried: number; max: number; total: number };
  failures: { count: number; by_reason: { reason: string; count: number }[]; latest: FailedTask[] };
  groups: TaskGroup[];
  timeline: { rows: string[]; bars: TimelineBar[]; truncated: boolean; from: number; to: number };
  heaviest: HeavyTask[];
}

/** Caps that keep the HTML file small (a few MB) with 100,000 tasks; the JSON says when one applied. */
export const LIMITS = {
  failures: 200,
  reasons: 30,
  timelineBars: 20_000,
  heaviest: 6,
  /** Of `heaviest`'s places, how many go to the tasks running longest. */
  runningCharts: 2,
} as const;

const CROMWELL_JOB = /^cromwell_([0-9a-f]{8})_(.+)$/i;

/** A record as the report reads it (read-tasks.ts): with when it last began to wait (task-history.ts waitingSince). */
export type ReportRecord = TaskRecord & {
  waiting_since?: number;
  /** A running task's peak memory so far (MB), from its latest sample (read-tasks.ts readRunningPeaks). */
  running_peak_mb?: number;
};

/** What a task used at most, as far as known: its record's peak, or its run's so far while it runs. */
function peakOf(r: ReportRecord): number | undefined {
  if (r.running_peak_mb === undefined) return r.peak_rss_mb;
  return Math.max(r.peak_rss_mb ?? 0, r.running_peak_mb);
}

/** Control and format characters (bidi overrides and isolates, zero-width ones, line separators): unseen. */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu;

/**
 * A name with its invisible characters shown as `\u202E` escapes: a command starting with a right-to-left
 * override (U+202E) displayed its program `evil☃` as `☃live`, another program's name (adversary 21 F4).
 */
export function visibleName(name: string): string {
  return name.replace(INVISIBLE, c => {
    const code = c.codePointAt(0) as number;
    return code > 0xffff
      ? `\\u{${code.toString(16).toUpperCase()}}`
      : `\\u${code.toString(16).toUpperCase().padStart(4, '0')}`;
  });
}

/**
 * `cromwell_<8-char workflow id>_<call name>` → the call name; else the command's program (and script). Either
 * with its invisible characters made visible (visibleName).
 */
export function groupOf(rec: Pick<TaskRecord, 'cromwell_job_id' | 'command'>): {
  name: string;
  kind: 'call' | 'command';
} {
  const m = rec.cromwell_job_id ? CROMWELL_JOB.exec(rec.cromwell_job_id) : null;
  if (m?.[2]) return { name: visibleName(m[2]), kind: 'call' };
  return { name: visibleName(programOf(rec.command)) || '(empty)', kind: 'command' };
}

/**
 * `--since` (`2h`, `1d`, `hh:mm:ss`) as the epoch ms it starts at. A span reaching before the epoch (1970) is
 * refused: `99999999d` was taken and the header said "since -271764-03-24" (adversary 21 F8). No record is
 * older than the epoch, so the span was a typing slip, not a wish for every task (which is no `--since`).
 */
export function sinceOf(text: string, now = Date.now()): number {
  const span = parseDurationOr(text, '--since', '2h, 30m, 1d or hh:mm:ss');
  // A span of nothing kept only the tasks not yet ended, a slip for "every task" (adversary 34 L9).
  if (span <= 0)
    throw new InvalidInputError(`invalid --since ${JSON.stringify(text)}: must be longer than 0`);
  if (span > now)
    throw new InvalidInputError(
      `invalid --since ${JSON.stringify(text)}: it reaches before 1970-01-01 (the epoch); at most ${Math.floor(now / 86_400_000)}d, or no --since for every task`,
    );
  return now - span;
}

/** A Cromwell workflow id (a UUID) or its first 8 characters, as `--workflow` takes it. */
const WORKFLOW_FILTER = /^[0-9a-f]{8}(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})?$/i;

/** `--workflow`, checked: any other text matched every workflow of the same first 8 characters, silently. */
export function validateWorkflowFilter(workflow: string): string {
  if (!WORKFLOW_FILTER.test(workflow))
    throw new InvalidInputError(
      `invalid --workflow ${JSON.stringify(workflow)}: give a Cromwell workflow id (a UUID) or its first 8 characters`,
    );
  return workflow.toLowerCase();
}

/**
 * Whether a task is one of the workflow's calls. Its call directory (`cromwell-executions/<name>/<id>/…`, in the
 * command or the rc path) names the workflow at any level, sub-workflows below their root's: the job name
 * (`cromwell_<8 chars>_<call>`) names the sub-workflow's id, so a root's report left out every sub-workflow call,
 * and a full id matched any workflow with the same first 8 characters (adversary 9 J9, J4). Without a call
 * directory, the job name's 8 characters (or a per-workflow pool's name) decide.
 */
function ofWorkflow(rec: TaskRecord, workflow: string): boolean {
  const w = workflow.toLowerCase();
  const full = w.length > 8;
  const where = `${rec.command ?? ''} ${rec.rc_file ?? ''}`.toLowerCase();
  if (where.includes('cromwell-executions/'))
    return full ? where.includes(`/${w}/`) : idPrefix(w).test(where);
  if (full && rec.pool.toLowerCase().endsWith(`_${w}`)) return true;
  const m = rec.cromwell_job_id ? CROMWELL_JOB.exec(rec.cromwell_job_id) : null;
  return m?.[1]?.toLowerCase() === w.slice(0, 8);
}

/** A path segment that is a workflow id starting with `w` (8 characters), compiled once per filter. */
let prefixRe: { w: string; re: RegExp } | undefined;
function idPrefix(w: string): RegExp {
  if (prefixRe?.w !== w) prefixRe = { w, re: new RegExp(`/${w}-[0-9a-f-]{27}/`) };
  return prefixRe.re;
}

export function matchesFilter(rec: TaskRecord, f: ReportFilter): boolean {
  if (f.pool !== undefined && rec.pool !== f.pool) return false;
  if (f.workflow !== undefined && !ofWorkflow(rec, f.workflow)) return false;
  if (f.since !== undefined && rec.ended_at !== undefined && rec.ended_at < f.since) return false;
  return true;
}

export function spread(values: number[]): Spread | null {
  if (values.length === 0) return null;
  const v = Float64Array.from(values).sort();
  const at = (q: number): number => v[Math.min(v.length - 1, Math.floor(q * v.length))] as number;
  let sum = 0;
  for (const x of v) sum += x;
  return {
    count: v.length,
    mean: round(sum / v.length, 2),
    p50: at(0.5),
    p95: at(0.95),
    max: v[v.length - 1] as number,
  };
}

/** `10G`, `500M`, `2T`, `1024K` → MB. */
export function memoryMb(text: string | undefined): number | null {
  const m = text ? /^(\d+(?:\.\d+)?)\s*([KMGT])?B?$/i.exec(text.trim()) : null;
  if (!m) return null;
  const unit = (m[2] ?? 'M').toUpperCase();
  const factor = { K: 1 / 1024, M: 1, G: 1024, T: 1024 * 1024 }[unit] ?? 1;
  return Number(m[1]) * factor;
}

function gb(mb: number): string {
  // Under 1 MB: "< 1 MB", not "0 MB" (a cgroup's charge of a tiny task; its chart showed 1.1 MB of RSS beside a
  // "peak 0 MB", adversary 14 F3).
  if (mb < 0.5) return '< 1 MB';
  return mb < 1024 ? `${Math.round(mb)} MB` : `${round(mb / 1024, 1)} GB`;
}

/**
 * "peak 3.1 GB of 16 GB: request 4 GB": the peak plus 20 % headroom, rounded up to a whole GB, when that is
 * below ¾ of the request or above it. `outOfMemory` tasks of the call were stopped at their limit: their peak
 * is where the limit stopped them, not what they needed, so such a call is told to ask for more, never "fits"
 * (adversary 20 F5).
 */
export function rightSize(peakMb: number | null, requestMb: number | null, outOfMemory = 0): string {
  if (peakMb === null) return 'no usage recorded';
  const want = Math.max(1, Math.ceil((peakMb * 1.2) / 1024));
  if (outOfMemory > 0) {
    const more = Math.max(want, Math.ceil((Math.max(peakMb, requestMb ?? 0) * 2) / 1024));
    return `${counted(outOfMemory, 'task')} ran out of memory (largest peak ${gb(peakMb)}): request more, e.g. ${more} GB`;
  }
  if (requestMb === null) return `peak ${gb(peakMb)}, no memory request: request ${want} GB`;
  if (peakMb > requestMb) return `peak ${gb(peakMb)} above the ${gb(requestMb)} request: request ${want} GB`;
  // Within the request but not 20 % under it (adversary 20 F4: 862 MB of 1 GB was "fits", and a slightly
  // larger input then ran out of memory).
  if (peakMb * 1.2 > requestMb)
    return `peak ${gb(peakMb)} of ${gb(requestMb)}, under 20 % headroom: request ${want} GB`;
  if (want * 1024 < requestMb * 0.75) return `peak ${gb(peakMb)} of ${gb(requestMb)}: request ${want} GB`;
  return `peak ${gb(peakMb)} of ${gb(requestMb)}: fits`;
}

function count<K extends string>(map: Partial<Record<K, number>>, k: K): void {
  map[k] = (map[k] ?? 0) + 1;
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function wallMs(r: TaskRecord): number | undefined {
  return r.started_at !== undefined && r.ended_at !== undefined && r.ended_at >= r.started_at
    ? r.ended_at - r.started_at
    : undefined;
}

function isFailure(status: number): boolean {
  return status < 0;
}

/** Redis's tail on a script's error: `script: <sha1>, on @user_script:<line>.` (any hash length: a cut message). */
const SCRIPT_TAIL = /\s*script: [0-9a-f]{8,}, on @user_script:\d+\.?/gi;
/** A whole token of 8 hex digits or more with a digit in it (a SHA, a run token): not a word like `deadbeef`. */
const HEX_TOKEN = /(?<![\p{L}\d_])(?=[a-f]*\d)[0-9a-f]{8,}(?![\p{L}\d_])/giu;
/** A whole number (`12`, `205.3`), not the digits inside a word (`vm2`, `402c9f`). */
const NUMBER = /(?<![\p{L}\d_.])\d+(?:\.\d+)?(?![\p{L}\d_])/gu;

/**
 * The group of a failure reason: what repeats once the ids are gone. Whole numbers become `N` and hex tokens
 * `<hex>`, words stay as written: turning every digit into N made `script: 8981639139…` read
 * `bbNcNbNbbeacaNceNbaNcN` and a worker `vm-2846-402c9f` read `vm-N-NcNf` (adversary 37 F5).
 */
export function reasonGroup(reason: string): string {
  return reason
    .replace(SCRIPT_TAIL, '')
    .replace(HEX_TOKEN, '<hex>')
    .replace(NUMBER, 'N')
    .trim()
    .slice(0, 120);
}

/** The reasons a submit's records get when it did not commit (manager/reconcile.ts, tasks/submit-task.ts). */
const UNCOMMITTED = /^(submit did not complete$|submit failed: )/;

/**
 * A record of a submit that never committed: failed from `queued` by reconciliation ("submit did not complete")
 * or by the submit itself ("submit failed: …"). The submit exited non-zero, so Cromwell never got the id, and a
 * worker never starts a task before its submit commits: it never ran. Counted as failed tasks, 24 such records
 * made a workflow of 109 calls and 4 failures read 133 tasks and 28 failed, with per-call rows of calls that
 * never existed (adversary 37 F4). Both reasons are written only from `queued`; the start time makes it sure.
 */
export function neverCommitted(r: TaskRecord): boolean {
  return r.status === TaskStatus.failed && r.started_at === undefined && UNCOMMITTED.test(r.reason ?? '');
}

/** Everything but the samples: pure, from the records alone. `heaviest` gets the ids to fetch samples of. */
export function analyse(
  all: readonly ReportRecord[],
  filter: ReportFilter,
  now = Date.now(),
): { data: ReportData; heavyIds: number[]; heavy: HeavyPick[] } {
  const records = all.filter(r => !neverCommitted(r));
  const by_status: Partial<Record<TaskStatusName, number>> = {};
  const walls: number[] = [];
  const waits: number[] = [];
  let retried = 0;
  let maxAttempts = 0;
  let totalAttempts = 0;
  const failed: FailedTask[] = [];
  const reasons = new Map<string, number>();
  const groups = new Map<string, { kind: 'call' | 'command'; recs: TaskRecord[] }>();

  for (const r of records) {
    count(by_status, r.status_name);
    const w = wallMs(r);
    if (w !== undefined) walls.push(w / 1000);
    // From its last return to the queue, when the reader knew it (read-tasks.ts), else from its submission.
    const since = r.waiting_since ?? r.queued_at;
    if (r.started_at !== undefined && since !== undefined)
      waits.push(Math.max(0, r.started_at - since) / 1000);
    if (r.attempts > 1) retried++;
    maxAttempts = Math.max(maxAttempts, r.attempts);
    totalAttempts += r.attempts;
    const g = groupOf(r);
    const entry = groups.get(g.name) ?? { kind: g.kind, recs: [] };
    entry.recs.push(r);
    groups.set(g.name, entry);
    if (isFailure(r.status)) {
      const reason = r.reason ?? r.status_name;
      // Reasons carry ids and paths; their first words are what repeats.
      const key = reasonGroup(reason);
      reasons.set(key, (reasons.get(key) ?? 0) + 1);
      failed.push({
        id: r.id,
        status_name: r.status_name,
        reason,
        ...(r.exit_code !== undefined ? { exit_code: r.exit_code } : {}),
        pool: r.pool,
        group: g.name,
        attempts: r.attempts,
        ...(r.ended_at !== undefined ? { ended_at: r.ended_at } : {}),
      });
    }
  }
  failed.sort((a, b) => (b.ended_at ?? 0) - (a.ended_at ?? 0));

  const data: ReportData = {
    generated_at: now,
    filter,
    tasks: records.length,
    never_committed: all.length - records.length,
    by_status,
    wall_s: spread(walls),
    queue_wait_s: spread(waits),
    attempts: { retried, max: maxAttempts, total: totalAttempts },
    failures: {
      count: failed.length,
      by_reason: [...reasons]
        .map(([reason, n]) => ({ reason, count: n }))
        .sort((a, b) => b.count - a.count)
        .slice(0, LIMITS.reasons),
      latest: failed.slice(0, LIMITS.failures),
    },
    groups: [...groups]
      .map(([name, g]) => summariseGroup(name, g.kind, g.recs))
      .sort((a, b) => b.tasks - a.tasks),
    timeline: timeline(records, now),
    heaviest: [],
  };
  const heavy = heaviest(records);
  return { data, heavyIds: heavy.map(h => h.id), heavy };
}

function summariseGroup(name: string, kind: 'call' | 'command', recs: readonly ReportRecord[]): TaskGroup {
  const by_status: Partial<Record<TaskStatusName, number>> = {};
  const walls: number[] = [];
  let cpuSeconds = 0;
  let capacitySeconds = 0;
  let peak: number | null = null;
  let cpus = 1;
  let cpusAssumed = true;
  let request: number | null = null;
  let stillRising = 0;
  for (const r of recs) {
    count(by_status, r.status_name);
    const spec = r.pool_spec;
    // `-c` is per node, split among its `-nwpn` workers (the batch script gives each ⌊-c ÷ nwpn⌋, at least 1), as the memory
    // request is: divided by the pool's whole `-c`, a call on a packed node looked nwpn times less efficient
    // (adversary 9 J13).
    const taskCpus = spec?.cpu !== undefined ? Math.max(1, Math.floor(spec.cpu / (spec.nwpn ?? 1))) : 1;
    if (spec?.cpu !== undefined) {
      cpus = taskCpus;
      cpusAssumed = false;
    }
    const perNode = memoryMb(spec?.mem);
    if (perNode !== null) request = perNode / (spec?.nwpn ?? 1);
    const w = wallMs(r);
    if (w !== undefined) walls.push(w / 1000);
    if (w !== undefined && w > 0 && r.cpu_time_s !== undefined) {
      cpuSeconds += r.cpu_time_s;
      capacitySeconds += (w / 1000) * taskCpus;
    }
    const used = peakOf(r);
    if (used !== undefined) peak = Math.max(peak ?? 0, used);
    // A running task's peak so far is a floor: said with the suggestion (adversary 21 F5: a call row said
    // 13 MB beside the 163 MB chart of its running task).
    if (r.running_peak_mb !== undefined) stillRising++;
  }
  const advice =
    peak === null && by_status.running
      ? 'running: usage recorded when a task ends'
      : rightSize(peak, request, by_status.outofresource ?? 0);
  return {
    name,
    kind,
    tasks: recs.length,
    by_status,
    wall_s: spread(walls),
    cpu_efficiency: capacitySeconds > 0 ? round(cpuSeconds / capacitySeconds, 3) : null,
    cpus,
    cpus_assumed: cpusAssumed,
    peak_rss_mb: peak,
    mem_request_mb: request === null ? null : Math.round(request),
    // A call whose tasks all still run has no peak yet (a record gets its figures when its run ends): said
    // so, rather than "no usage recorded", in a report made mid-run (adversary 9 J5).
    suggestion:
      stillRising > 0 ? `${advice} (${counted(stillRising, 'task')} still running: peak so far)` : advice,
  };
}

/**
 * One row per worker slot: a worker's tasks, by start time, each on the lowest slot free at its start.
 * Records keep only the last attempt's run, so a retried task shows its last run.
 */
function timeline(records: readonly TaskRecord[], now: number): ReportData['timeline'] {
  const ran = records
    .filter(r => r.started_at !== undefined && r.worker_id !== undefined)
    .sort((a, b) => (b.started_at as number) - (a.started_at as number))
    .slice(0, LIMITS.timelineBars)
    .reverse();
  const byWorker = new Map<string, TaskRecord[]>();
  for (const r of ran) {
    const list = byWorker.get(r.worker_id as string) ?? [];
    list.push(r);
    byWorker.set(r.worker_id as string, list);
  }
  const rows: string[] = [];
  const bars: TimelineBar[] = [];
  let from = Infinity;
  let to = -Infinity;
  for (const worker of [...byWorker.keys()].sort()) {
    const slotEnds: number[] = [];
    const firstRow = rows.length;
    for (const r of byWorker.get(worker) as TaskRecord[]) {
      const start = r.started_at as number;
      const end = r.ended_at ?? (r.status === TaskStatus.running ? now : start);
      let slot = slotEnds.findIndex(e => e <= start);
      if (slot < 0) {
        slot = slotEnds.length;
        // Drawn on the canvas: an override in a worker's name reversed its slot number too.
        rows.push(`${visibleName(worker)} #${slot + 1}`);
      }
      slotEnds[slot] = end;
      bars.push({ row: firstRow + slot, id: r.id, start, end, status_name: r.status_name });
      from = Math.min(from, start);
      to = Math.max(to, end);
    }
  }
  return {
    rows,
    bars,
    truncated:
      ran.length < records.filter(r => r.started_at !== undefined && r.worker_id !== undefined).length,
    from: Number.isFinite(from) ? from : now,
    to: Number.isFinite(to) ? to : now,
  };
}

/**
 * The tasks that used the most: top by peak memory and top by CPU time, interleaved, without repeats; and the
 * tasks running longest, which have no figures in their record before they end but have samples — a report
 * made mid-run (`--since 2h` on a live pool) showed none of the tasks running then (adversary 9 J5).
 */
function heaviest(records: readonly ReportRecord[]): HeavyPick[] {
  const running = records
    .filter(r => r.status_name === 'running' && r.started_at !== undefined)
    .sort((a, b) => (a.started_at as number) - (b.started_at as number))
    .slice(0, LIMITS.runningCharts)
    .map(r => r.id);
  const n = LIMITS.heaviest - running.length;
  const top = (key: (r: ReportRecord) => number | undefined): number[] =>
    records
      .filter(r => (key(r) ?? 0) > 0)
      .sort((a, b) => (key(b) as number) - (key(a) as number))
      .slice(0, n)
      .map(r => r.id);
  const mem = top(peakOf);
  const cpu = top(r => r.cpu_time_s);
  const out: HeavyPick[] = [];
  const taken = (id: number): boolean => out.some(h => h.id === id);
  for (let i = 0; i < n && out.length < n; i++) {
    for (const [id, why] of [
      [mem[i], 'memory'],
      [cpu[i], 'cpu'],
    ] as const)
      if (id !== undefined && !taken(id) && out.length < n) out.push({ id, why });
  }
  for (const id of running) if (!taken(id)) out.push({ id, why: 'running' });
  return out;
}

/** The heaviest tasks with their samples (tasks without samples are kept: their record still says what they used). */
export function withSamples(
  records: readonly ReportRecord[],
  picks: readonly HeavyPick[],
  samples: Map<number, Partial<ResourceSample>[]>,
  now = Date.now(),
): HeavyTask[] {
  const byId = new Map(records.map(r => [r.id, r]));
  return picks.map(({ id, why }) => {
    const r = byId.get(id) as ReportRecord;
    const list = samples.get(id) ?? [];
    const ran =
      wallMs(r) ??
      (r.status === TaskStatus.running && r.started_at !== undefined ? now - r.started_at : undefined);
    return {
      id,
      group: groupOf(r).name,
      status_name: r.status_name,
      why,
      peak_rss_mb: peakOf(r) ?? null,
      cpu_time_s: r.cpu_time_s ?? null,
      run_s: ran === undefined ? null : Math.max(0, ran) / 1000,
      samples: {
        t: list.map(s => Number(s.run_time ?? 0)),
        cpu: list.map(s => Number(s.cpu_load ?? 0)),
        mem_mb: list.map(s => Number(s.rmem_usage ?? 0)),
      },
    };
  });
}
