import type { JtmContext } from '../context.js';
import { analyse, withSamples, matchesFilter, type ReportData, type ReportFilter } from './analyse.js';
import { readRecords, readSamples, scanTaskIds, type ReadProgress } from './read-tasks.js';

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
  const ids = await scanTaskIds(ctx, onProgress);
  const records = (await readRecords(ctx, ids, onProgress)).filter(r => matchesFilter(r, filter));
  const { data, heavyIds } = analyse(records, filter, now);
  onProgress?.({ phase: 'samples', done: 0, total: heavyIds.length });
  data.heaviest = withSamples(records, heavyIds, await readSamples(ctx, heavyIds));
  onProgress?.({ phase: 'samples', done: heavyIds.length, total: heavyIds.length });
  return data;
}
