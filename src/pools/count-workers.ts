import type { JtmContext } from '../context.js';
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
  const live = await countLiveSlots(ctx, pool);
  const pending = withSlurm ? await countPendingSlurmSlots(ctx, pool) : 0;
  return { pool, live_slots: live, pending_slurm_slots: pending, total: live + pending };
}
