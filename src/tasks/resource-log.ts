import { forTask, type JtmContext } from '../context.js';
import { TaskNotFoundError } from '../errors.js';
import { refuseReplica } from '../redis/replica-check.js';
import {
  csvHeader,
  csvLine,
  RESOURCE_FIELDS,
  samplesOfEntries,
  type ResourceSample,
} from './resource-format.js';

export interface ResourceLog {
  task_id: number;
  resource_log: ResourceSample[];
}

/** The task's resource samples from Redis (any host, no shared filesystem needed), oldest first. */
export async function getResourceLog(anyShard: JtmContext, id: number): Promise<ResourceLog> {
  const ctx = forTask(anyShard, id);
  const [exists, entries] = await Promise.all([
    ctx.redis.exists(ctx.keys.task(id)),
    ctx.redis.xrange(ctx.keys.taskResources(id), '-', '+'),
  ]);
  if (!exists) {
    await refuseReplica(ctx);
    throw new TaskNotFoundError(id);
  }
  // Always every field, in the documented order.
  const samples = samplesOfEntries(entries).map(
    raw => Object.fromEntries(RESOURCE_FIELDS.map(f => [f, raw[f] ?? null])) as ResourceSample,
  );
  return { task_id: id, resource_log: samples };
}

export function resourceLogCsv(log: ResourceLog): string {
  return csvHeader() + log.resource_log.map(csvLine).join('');
}
