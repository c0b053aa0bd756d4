import { appendFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';

import type { Job } from 'bullmq';

import type { JtmContext } from '../context.js';
import { ensureStillPrivate } from '../private-dir.js';
import { LOG_DIR } from './output-files.js';
import type { TaskAccounting } from './accounting.js';
import { monotonicMs } from './monotonic.js';
import { EscapeScanner } from './task-token.js';
import { nodeMemory } from './proc-files.js';
import {
  buildSample,
  csvHeader,
  csvLine,
  type ResourceSample,
  type WorkerIdentity,
} from './resource-sample.js';
import type { TaskRun } from './task-run.js';
import { RUN_PEAK_FIELD } from '../tasks/resource-format.js';

/**
 * Share of one core the watch may take: when a round of watches takes longer (big trees, a loaded node), the
 * next round waits longer than JTM_WATCH_INTERVAL, so that watching never costs more than this.
 */
const WATCH_BUDGET = 0.005;

/**
 * ...but rounds are never further apart than this unless one costs more than WATCH_BUDGET_CEILING: on a node
 * with a thousand processes a round costs ~5 ms, and under a full test run's load 10 ms and more, which the
 * budget alone stretched to 2 s and more between rounds: a detached 200 MB child living 2 s was then never
 * seen in /proc mode (peak 3 MB, the CI run of stop 27).
 */
const WATCH_MAX_WAIT_MS = 1000;
const WATCH_BUDGET_CEILING = 0.02;

/**
 * The wait before the next round of watches after one that cost `spentMs` of CPU, `previousMs` after the one
 * before. It at most doubles from one round to the next: a round's cost can be a one-off (the first /proc scan
 * of a worker's first /proc-mode task reads every process's environment once: 140 ms on a node with 3,000
 * processes, which stretched the next wait to 7 s and the task ran unwatched), while a lasting cost still
 * reaches the budget within a few rounds.
 */
export function nextWatchWait(spentMs: number, intervalMs: number, previousMs = intervalMs): number {
  const withinBudget = spentMs / WATCH_BUDGET - spentMs;
  const withinCeiling = Math.max(WATCH_MAX_WAIT_MS, spentMs / WATCH_BUDGET_CEILING - spentMs);
  return Math.max(intervalMs, Math.min(withinBudget, withinCeiling, 2 * Math.max(previousMs, intervalMs)));
}

/** Samples kept per task in Redis (the stream is capped; the CSV file keeps everything). */
const STREAM_MAX = 10_000;
const MB = 1024 * 1024;

/** A sample and the run's peak memory so far (MB), the two fields of one stream entry. */
interface StoredSample {
  sample: ResourceSample;
  peakMb: number;
}

/**
 * A task's samples reach Redis (its stream and the job's progress) once it has run this long; until then they
 * are held here, and a task that ends sooner keeps them only in its CSV file. Redis 7 allocates about 4.7 KB
 * for a stream however short, more than everything else a finished task keeps: without this, each of the many
 * sub-second tasks of a workflow cost five times its record (benchmark 1: ~17 % of `/bin/true` tasks on a loaded
 * node lived past the first sample at 100 ms). The record still has their peak memory and CPU time.
 */
export const REDIS_SAMPLES_AFTER_MS = 1000;

/**
 * One timer per worker samples the process tree of every running task: each sample goes to the
 * BullMQ job's progress, the task's capped Redis stream and its CSV file under <log dir>/resource/.
 * A second, faster timer watches the tasks that need it (accounting.ts): without a cgroup, every task, for
 * its memory high-water marks and CPU time; with a memory limit, for the limit (the kernel's OOM kill in a
 * cgroup, the resident total otherwise). A task over its limit is stopped as `outofresource`.
 */
export class Sampler {
  private readonly runs = new Map<
    number,
    { run: TaskRun; job: Job; acct?: TaskAccounting; onOverLimit?: () => void; held?: StoredSample[] }
  >();
  private timer: NodeJS.Timeout | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly dir: string;
  private escapes: EscapeScanner | undefined;

  constructor(
    private readonly ctx: JtmContext,
    private readonly me: WorkerIdentity,
    private readonly intervalMs: number,
    private readonly watchIntervalMs = 250,
  ) {
    this.dir = join(ctx.config.logDir, 'resource');
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), this.intervalMs);
    this.timer.unref();
    this.scheduleWatch(this.watchIntervalMs);
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    clearTimeout(this.watchTimer);
  }

  private scheduleWatch(delayMs: number): void {
    if (this.stopped) return;
    this.watchTimer = setTimeout(() => {
      // CPU time, not wall time: on a loaded node the worker may wait for a core in the middle of a round.
      const t0 = process.cpuUsage();
      const suspect = this.watchAll();
      const used = process.cpuUsage(t0);
      const spent = (used.user + used.system) / 1000;
      // A task over its limit by its RSS sum is looked at again at the interval, not the budget's wait (1 s and
      // more on a busy node): a detached 300 MB child under a 100 MB limit ran 2.6 s (adversary 20 F10).
      this.scheduleWatch(
        suspect ? this.watchIntervalMs : nextWatchWait(spent, this.watchIntervalMs, delayMs),
      );
    }, delayMs);
    this.watchTimer.unref();
  }

  /** Registers a started run; its first sample comes right after it starts. */
  add(run: TaskRun, job: Job, acct?: TaskAccounting, onOverLimit?: () => void): void {
    this.runs.set(run.id, { run, job, acct, onOverLimit });
    setTimeout(() => this.sample(run.id), Math.min(100, this.intervalMs)).unref();
  }

  /** One round; true when a task is over its limit by its RSS sum, awaiting a reading that decides. */
  private watchAll(): boolean {
    this.adoptEscaped();
    let suspect = false;
    for (const { run, acct, onOverLimit } of this.runs.values()) {
      if (!acct?.watched || !run.tree || run.stoppedBy) continue;
      if (!acct.verifyJoined(run.pid, monotonicMs())) {
        this.ctx.logger.warn({ task: run.id }, 'the task did not join its cgroup: accounted from /proc');
        void this.ctx.tasks
          .setFenced(run.id, { workerId: this.me.workerId, runToken: run.token }, { accounting: acct.mode })
          .catch(() => {});
      }
      const procs = acct.mode === 'procfs' ? run.tree.refresh() : undefined;
      run.wakeStoppedWrapper(procs);
      if (!acct.observe(procs)) {
        suspect ||= acct.overLimitSuspected;
        continue;
      }
      onOverLimit?.();
      run.stop('outofresource');
    }
    return suspect;
  }

  /**
   * /proc mode: adds to each task's tree its processes that detached before a walk saw them (EscapeScanner),
   * so that its memory limit and figures cover them. Only while a task is accounted from /proc.
   */
  private adoptEscaped(): void {
    const byToken = new Map<string, TaskRun>();
    for (const { run, acct } of this.runs.values())
      if (acct?.mode === 'procfs' && run.tree && !run.stoppedBy) byToken.set(run.token, run);
    if (byToken.size === 0) return;
    this.escapes ??= new EscapeScanner();
    for (const [token, pids] of this.escapes.scan(new Set(byToken.keys())))
      byToken.get(token)?.tree?.adoptPids(pids);
  }

  /** Forgets an ended run; samples held while it was young go to Redis if it did live past the threshold. */
  remove(id: number): void {
    const entry = this.runs.get(id);
    this.runs.delete(id);
    if (entry?.held && Date.now() - entry.run.startedAt >= REDIS_SAMPLES_AFTER_MS) {
      this.store(id, entry.job, entry.held);
    }
  }

  private tick(): void {
    for (const id of this.runs.keys()) this.sample(id);
  }

  private sample(id: number): void {
    const entry = this.runs.get(id);
    if (!entry?.run.tree) return;
    const procs = entry.run.tree.refresh();
    if (procs.length === 0) return;
    // Also here, from the tree just read: a task in a cgroup with no limit to enforce is not watched closely
    // (watchAll), and a wrapper it stopped stayed stopped (a fresh clone's run failed so).
    entry.run.wakeStoppedWrapper(procs);
    // /proc mode: the sample is a look too, judged as the watch judges: a sample saw a tree at 405 MB under a
    // 300M limit while it lived, and the task ended `success` with no kill and no word (adversary 33 F3).
    const acct = entry.acct;
    if (
      acct?.mode === 'procfs' &&
      acct.limitBytes !== undefined &&
      !entry.run.stoppedBy &&
      acct.observe(procs)
    ) {
      entry.onOverLimit?.();
      entry.run.stop('outofresource');
    }
    const now = Date.now();
    const { sample, state } = buildSample(
      procs,
      entry.run.sampleState,
      { id, pid: entry.run.pid, startedAt: entry.run.startedAt, numTasks: this.runs.size },
      this.me,
      nodeMemory(),
      now,
    );
    entry.run.sampleState = state;
    this.writeCsv(id, sample);
    // The run's peak so far, as its record will say it when it ends (the accounting's figure where it has one):
    // the last entry of the stream carries it, so a report made mid-run reads a running task's peak in O(1)
    // instead of its whole stream (adversary 21 F5).
    const peakBytes = entry.acct ? entry.acct.apply(state).peakRssBytes : state.peakRssBytes;
    const stored = { sample, peakMb: Math.round(peakBytes / MB) };
    if (now - entry.run.startedAt < REDIS_SAMPLES_AFTER_MS) {
      (entry.held ??= []).push(stored);
      return;
    }
    const samples = entry.held ? [...entry.held, stored] : [stored];
    entry.held = undefined;
    this.store(id, entry.job, samples);
  }

  /** The samples go to the task's stream (one XADD each, pipelined) and the latest to the job's progress. */
  private store(id: number, job: Job, samples: StoredSample[]): void {
    const log = this.ctx.logger;
    const latest = samples[samples.length - 1];
    if (latest)
      job.updateProgress(latest.sample).catch(err => log.debug({ err, task: id }, 'progress not updated'));
    const key = this.ctx.keys.taskResources(id);
    const pipeline = this.ctx.redis.pipeline();
    for (const { sample, peakMb } of samples) {
      pipeline.xadd(
        key,
        'MAXLEN',
        '~',
        STREAM_MAX,
        '*',
        'sample',
        JSON.stringify(sample),
        RUN_PEAK_FIELD,
        String(peakMb),
      );
    }
    pipeline.exec().catch(err => log.debug({ err, task: id }, 'sample not stored'));
  }

  private writeCsv(id: number, sample: ResourceSample): void {
    const log = this.ctx.logger;
    try {
      const file = join(this.dir, `${id}.csv`);
      if (!existsSync(file)) {
        // Made again if removed; never another user's (private-dir.ts): a swapped directory is not written.
        ensureStillPrivate(this.dir, LOG_DIR);
        appendFileSync(file, csvHeader());
      }
      appendFileSync(file, csvLine(sample));
    } catch (err) {
      log.warn({ err, task: id }, 'resource CSV not written');
    }
  }
}
