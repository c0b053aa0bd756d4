import { allShards, forPool, type JtmContext } from '../context.js';
import { validatePoolName } from '../pool-spec.js';
import { countLiveSlots } from './live-workers.js';
import { countPendingSlurmSlots } from './slurm-slots.js';

export interface WorkerCount {
  pool?: string;
  live_slots: number;
  pending_slurm_slots: number;
  total: number;
}

export async function countWorkers(
  ctx: JtmContext,
  pool: string | undefined,
  withSlurm = false,
): Promise<WorkerCount> {
  if (pool !== undefined) validatePoolName(pool);
  const shards = pool === undefined ? allShards(ctx) : [forPool(ctx, pool)];
  const sum = (list: number[]): number => list.reduce((a, b) => a + b, 0);
  const live = sum(await Promise.all(shards.map(s => countLiveSlots(s, pool))));
  const pending = withSlurm ? sum(await Promise.all(shards.map(s => countPendingSlurmSlots(s, pool)))) : 0;
  return { pool, live_slots: live, pending_slurm_slots: pending, total: live + pending };
}
