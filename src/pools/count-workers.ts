import { allShards, forPool, type JtmContext } from '../context.js';
import { validatePoolName } from '../pool-spec.js';
import { refuseReplica } from '../redis/replica-check.js';
import { countSlotsByState } from './live-workers.js';
import { countPendingSlurmSlots } from './slurm-slots.js';

export interface WorkerCount {
  pool?: string;
  /** Slots of live workers that take any task. */
  live_slots: number;
  /**
   * Slots of live workers draining before their end (a Slurm allocation's last 5 minutes, a `--lifetime`'s
   * last task length): they take only tasks that fit in what is left, so they are not counted as capacity.
   */
  draining_slots: number;
  /**
   * Slots of live workers that take no task for now: their log dir's disk is full, or the node's memory below
   * JTM_MEM_AVAILABLE_MARGIN. Counted again once that passes.
   */
  paused_slots: number;
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
  const slots = await Promise.all(shards.map(s => countSlotsByState(s, pool)));
  const live = sum(slots.map(s => s.serving));
  const draining = sum(slots.map(s => s.draining));
  const paused = sum(slots.map(s => s.paused));
  const pending = withSlurm ? sum(await Promise.all(shards.map(s => countPendingSlurmSlots(s, pool)))) : 0;
  // "No worker" from a replica re-syncing after a failover (empty) is Redis unavailable, as isalive's "no".
  if (live + pending <= 0) for (const s of shards) await refuseReplica(s);
  return {
    pool,
    live_slots: live,
    draining_slots: draining,
    paused_slots: paused,
    pending_slurm_slots: pending,
    total: live + pending,
  };
}
