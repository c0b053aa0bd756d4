import type { Redis } from 'ioredis';

import type { JtmContext } from '../context.js';
import { runScript } from '../redis/run-script.js';
import { READ_TASKS } from '../redis/scripts.js';
import { waitingSince } from '../store/task-history.js';
import type { ReportRecord } from './analyse.js';
import { parseTaskRecord, REPORT_FIELDS } from '../store/task-record.js';
import { TaskStatus } from '../tasks/status.js';
import {
  lastRunSamples,
  runPeakOfEntry,
  sampleOfEntry,
  samplesOfEntries,
  type ResourceSample,
} from '../tasks/resource-format.js';

/** Keys asked for per SCAN call, and records per pipeline: large enough for few round trips, small enough
 * that one batch never holds Redis for long. */
const SCAN_COUNT = 10_000;
const BATCH = 2_000;

export interface ReadProgress {
  /** filter: `done` of the `total` records read match the report's filters (said only when it has some). */
  phase: 'scan' | 'records' | 'filter' | 'samples';
  done: number;
  total: number;
}

/** Glob metacharacters of a SCAN MATCH pattern, escaped so that a prefix is matched literally. */
function globEscape(s: string): string {
  return s.replace(/[*?[\]\\]/g, c => `\\${c}`);
}

/** The Redis nodes to SCAN: the node itself, or every master of a cluster (the hash tag keeps JTM on one). */
function scanNodes(redis: JtmContext['redis']): Redis[] {
  return 'nodes' in redis && typeof redis.nodes === 'function' ? redis.nodes('master') : [redis as Redis];
}

/**
 * Ids of every task record still in Redis. SCAN rather than 1..next-task-id: finished tasks expire after
 * the retention time, so after a long run most of that range is gone and walking it would cost millions
 * of empty reads.
 */
export async function scanTaskIds(
  ctx: JtmContext,
  onProgress?: (p: ReadProgress) => void,
): Promise<number[]> {
  const base = ctx.keys.taskBase;
  const match = `${globEscape(base)}[0-9]*`;
  const ids: number[] = [];
  for (const node of scanNodes(ctx.redis)) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', match, 'COUNT', SCAN_COUNT);
      cursor = next;
      for (const k of keys) {
        const rest = k.slice(base.length);
        // task:<id> only, not task:<id>:events / :resources / :output
        if (/^\d+$/.test(rest)) ids.push(Number(rest));
      }
      onProgress?.({ phase: 'scan', done: ids.length, total: 0 });
    } while (cursor !== '0');
  }
  return [...new Set(ids)].sort((a, b) => a - b);
}

/** What the report reads of a record: its fields, and the history its queue wait is read from. */
const READ_FIELDS = [...REPORT_FIELDS, 'history'];

/**
 * The records of `ids` (the fields the report shows), a batch per script run; ids whose record expired
 * meanwhile are left out.
 */
export async function readRecords(
  ctx: JtmContext,
  ids: readonly number[],
  onProgress?: (p: ReadProgress) => void,
): Promise<ReportRecord[]> {
  const out: ReportRecord[] = [];
  for (let i = 0; i < ids.length; i += BATCH) {
    // The script reads no KEYS, but naming one routes it to the node of the shard's slot on a Redis
    // Cluster (a script without keys goes to any node, which refuses the keys of another).
    const json = await runScript<string>(
      ctx.redis,
      READ_TASKS,
      [ctx.keys.activeTasks],
      [ctx.keys.taskBase, READ_FIELDS.length, ...READ_FIELDS, ...ids.slice(i, i + BATCH)],
    );
    for (const values of JSON.parse(json) as (string | false)[][]) {
      const hash: Record<string, string> = {};
      READ_FIELDS.forEach((f, n) => {
        const v = values[n];
        if (typeof v === 'string') hash[f] = v;
      });
      const rec = parseTaskRecord(hash);
      if (!rec) continue;
      // A task waiting now (given back after a run) waits since its last return; else before its latest start.
      const waiting = rec.status === TaskStatus.queued || rec.status === TaskStatus.pending;
      const since = waitingSince(hash, waiting ? undefined : rec.started_at);
      out.push(since === undefined ? rec : { ...rec, waiting_since: since });
    }
    onProgress?.({ phase: 'records', done: Math.min(ids.length, i + BATCH), total: ids.length });
  }
  return out;
}

/** The resource samples of a few tasks (oldest first), one pipeline. */
export async function readSamples(
  ctx: JtmContext,
  ids: readonly number[],
): Promise<Map<number, Partial<ResourceSample>[]>> {
  const pipe = ctx.redis.pipeline();
  for (const id of ids) pipe.xrange(ctx.keys.taskResources(id), '-', '+');
  const results = (await pipe.exec()) ?? [];
  const out = new Map<number, Partial<ResourceSample>[]>();
  results.forEach(([err, entries], n) => {
    if (err) throw err;
    // The last run's, as the record, the timeline and the figures are.
    out.set(ids[n] as number, lastRunSamples(samplesOfEntries(entries as [string, string[]][])));
  });
  return out;
}

/**
 * The peak memory so far (MB) of running tasks, from the last entry of each one's resource stream (one
 * XREVRANGE COUNT 1 each, pipelined): the record gets its figures only when the run ends. An entry of an
 * earlier run (another worker or pid: this run has no sample yet) gives nothing.
 */
export async function readRunningPeaks(
  ctx: JtmContext,
  running: readonly Pick<ReportRecord, 'id' | 'worker_id' | 'pid'>[],
): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  for (let i = 0; i < running.length; i += BATCH) {
    const batch = running.slice(i, i + BATCH);
    const pipe = ctx.redis.pipeline();
    for (const r of batch) pipe.xrevrange(ctx.keys.taskResources(r.id), '+', '-', 'COUNT', 1);
    const results = (await pipe.exec()) ?? [];
    results.forEach(([err, entries], n) => {
      if (err) throw err;
      const rec = batch[n];
      const fields = (entries as [string, string[]][])[0]?.[1];
      if (!rec || !fields) return;
      const sample = sampleOfEntry(fields);
      if (sample?.worker_id !== rec.worker_id || sample?.child_pid !== rec.pid) return;
      const peak = runPeakOfEntry(fields);
      if (peak !== undefined) out.set(rec.id, peak);
    });
  }
  return out;
}
