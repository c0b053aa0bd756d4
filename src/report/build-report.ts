import { allShards, byTaskShard, forTask, type JtmContext } from '../context.js';
import {
  analyse,
  withSamples,
  matchesFilter,
  type ReportData,
  type ReportFilter,
  type ReportRecord,
} from './analyse.js';
import { refuseReplica } from '../redis/replica-check.js';
import { TaskStatus } from '../tasks/status.js';
import type { ResourceSample } from '../tasks/resource-format.js';
import { readRecords, readRunningPeaks, readSamples, scanTaskIds, type ReadProgress } from './read-tasks.js';

/**
 * The run report's data, from Redis alone (any host): every task record still kept (SCAN + pipelined
 * HGETALL in batches), filtered, summarised; then the samples of the few heaviest tasks.
 */
export async function buildReport(
  ctx: JtmContext,
  filter: ReportFilter,
  onProgress?: (p: ReadProgress) => void,
  now = Date.now(),
): Promise<ReportData> {
  // Shard by shard (docs/scaling.md): a pipeline or script may only touch one shard's slot.
  const all: ReportRecord[] = [];
  for (const shard of allShards(ctx)) {
    // A replica re-syncing after a failover holds part of the records or none: its report said "2000/6069 task
    // records read", or nothing ran at all (adversary 34 H2). One that is in step with its master may be read.
    await refuseReplica(shard, { unlessSynced: true });
    all.push(...(await readRecords(shard, await scanTaskIds(shard, onProgress), onProgress)));
  }
  const records = all.filter(r => matchesFilter(r, filter)).sort((a, b) => a.id - b.id);
  // How many matched: `-p nosuch` wrote an empty report, exit 0, without a word (adversary 34 L9).
  if (Object.keys(filter).length > 0)
    onProgress?.({ phase: 'filter', done: records.length, total: all.length });
  await addRunningPeaks(ctx, records);
  const { data, heavyIds, heavy } = analyse(records, filter, now);
  onProgress?.({ phase: 'samples', done: 0, total: heavyIds.length });
  const samples = new Map<number, Partial<ResourceSample>[]>();
  for (const id of heavyIds) {
    for (const [k, v] of await readSamples(forTask(ctx, id), [id])) samples.set(k, v);
  }
  data.heaviest = withSamples(records, heavy, samples, now);
  onProgress?.({ phase: 'samples', done: heavyIds.length, total: heavyIds.length });
  return data;
}

/** Running records get their peak so far from their resource stream (records have figures only once ended). */
async function addRunningPeaks(ctx: JtmContext, records: ReportRecord[]): Promise<void> {
  const running = records.filter(r => r.status === TaskStatus.running);
  for (const [shard, list] of byTaskShard(ctx, running, r => r.id)) {
    const peaks = await readRunningPeaks(shard, list);
    for (const r of list) {
      const peak = peaks.get(r.id);
      if (peak !== undefined) r.running_peak_mb = peak;
    }
  }
}
