import type { JtmContext } from '../context.js';

export interface LiveWorker {
  id: string;
  pool: string;
  host: string;
  pid: number;
  slots: number;
  running: number[];
  /** The most tasks it ran at once between its last two beats (the running list is one instant's). */
  busy_peak: number;
  state: string;
  started_at: number;
  last_beat: number;
  slurm_job_id: number;
  end_of_life?: number;
  /** Why a `paused` worker takes no task for now: `log dir full`, `low memory` (its `paused_why` says more). */
  paused?: string;
  paused_why?: string;
}

/**
 * Workers that are alive: their alive key exists. Its TTL is the worker's own heartbeat × missed beats, and
 * Redis measures it, so every reader (check-worker, pools, the dashboard, the manager's provisioning) agrees
 * with the manager's dead-worker sweep whatever its own JTM_HEARTBEAT_INTERVAL: a worker started with
 * `-hb 60s` was counted dead by a reader with the default 2 s after 6 s. From our own keys: BullMQ's
 * getWorkers() relies on CLIENT LIST, which Redis Cluster and managed Redis break. The index holds the
 * workers that have not exited or been declared dead yet (the manager prunes it), so reading it whole is cheap.
 */
export async function listLiveWorkers(ctx: JtmContext, pool?: string): Promise<LiveWorker[]> {
  const ids = await ctx.redis.zrange(ctx.keys.workers, 0, -1);
  if (ids.length === 0) return [];
  const pipeline = ctx.redis.pipeline();
  for (const id of ids) pipeline.hgetall(ctx.keys.worker(id)).exists(ctx.keys.workerAlive(id));
  const results = (await pipeline.exec()) ?? [];
  const workers: LiveWorker[] = [];
  for (let i = 0; i < ids.length; i++) {
    const [err, h] = results[2 * i] ?? [];
    const [aliveErr, alive] = results[2 * i + 1] ?? [];
    const w = h as Record<string, string> | null;
    if (err || aliveErr || alive !== 1 || !w?.['id'] || w['state'] === 'exited') continue;
    if (pool !== undefined && w['pool'] !== pool) continue;
    workers.push({
      id: w['id'],
      pool: w['pool'] ?? '',
      host: w['host'] ?? '',
      pid: Number(w['pid']),
      slots: Number(w['slots'] ?? 1),
      running: w['running'] ? w['running'].split(',').map(Number) : [],
      busy_peak: Number(w['busy_peak'] ?? 0) || 0,
      state: w['state'] ?? 'running',
      started_at: Number(w['started_at']),
      last_beat: Number(w['last_beat']),
      slurm_job_id: Number(w['slurm_job_id'] ?? 0),
      end_of_life: w['end_of_life'] ? Number(w['end_of_life']) : undefined,
      ...(w['state'] === 'paused' ? { paused: w['paused'] ?? '', paused_why: w['paused_why'] ?? '' } : {}),
    });
  }
  return workers;
}

/**
 * Slots of live workers that take any task (`running`), of those draining (only what their end leaves time for),
 * and of those paused (no task until their log dir's disk or the node's memory allows one).
 */
export async function countSlotsByState(
  ctx: JtmContext,
  pool?: string,
): Promise<{ serving: number; draining: number; paused: number }> {
  const workers = await listLiveWorkers(ctx, pool);
  const sum = (state: string): number =>
    workers.filter(w => w.state === state).reduce((n, w) => n + w.slots, 0);
  return { serving: sum('running'), draining: sum('draining'), paused: sum('paused') };
}
