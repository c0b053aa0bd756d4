import type { JtmContext } from '../context.js';

export interface LiveWorker {
  id: string;
  pool: string;
  host: string;
  pid: number;
  slots: number;
  running: number[];
  state: string;
  started_at: number;
  last_beat: number;
  slurm_job_id: number;
  end_of_life?: number;
}

/**
 * Workers whose heartbeat is recent (within missedBeats × interval), from our own keys: BullMQ's
 * getWorkers() relies on CLIENT LIST, which Redis Cluster and managed Redis break.
 */
export async function listLiveWorkers(
  ctx: JtmContext,
  pool?: string,
  now = Date.now(),
): Promise<LiveWorker[]> {
  const window = ctx.config.heartbeatIntervalMs * ctx.config.missedBeats;
  const ids = await ctx.redis.zrangebyscore(ctx.keys.workers, now - window, '+inf');
  if (ids.length === 0) return [];
  const pipeline = ctx.redis.pipeline();
  for (const id of ids) pipeline.hgetall(ctx.keys.worker(id));
  const results = (await pipeline.exec()) ?? [];
  const workers: LiveWorker[] = [];
  for (const [err, h] of results) {
    const w = h as Record<string, string> | null;
    if (err || !w?.['id'] || w['state'] === 'exited') continue;
    if (pool !== undefined && w['pool'] !== pool) continue;
    workers.push({
      id: w['id'],
      pool: w['pool'] ?? '',
      host: w['host'] ?? '',
      pid: Number(w['pid']),
      slots: Number(w['slots'] ?? 1),
      running: w['running'] ? w['running'].split(',').map(Number) : [],
      state: w['state'] ?? 'running',
      started_at: Number(w['started_at']),
      last_beat: Number(w['last_beat']),
      slurm_job_id: Number(w['slurm_job_id'] ?? 0),
      end_of_life: w['end_of_life'] ? Number(w['end_of_life']) : undefined,
    });
  }
  return workers;
}

/** Live worker slots, in one pool or in all. */
export async function countLiveSlots(ctx: JtmContext, pool?: string): Promise<number> {
  const workers = await listLiveWorkers(ctx, pool);
  return workers.filter(w => w.state !== 'stopping').reduce((n, w) => n + w.slots, 0);
}
