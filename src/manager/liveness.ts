import { hostname } from 'node:os';

import { allShards, type JtmContext } from '../context.js';
import { refuseReplica } from '../redis/replica-check.js';

export interface ManagerAlive {
  host: string;
  pid: number;
  last_sweep: number;
  /** ISO form of last_sweep, for people. */
  last_sweep_at: string;
  sweep_interval_ms: number;
}

/** How many sweep intervals the alive key outlives its sweep: a manager is "down" after ~3 missed ticks. */
export const ALIVE_INTERVALS = 3;

/** Written by every sweep: who swept last and when; it expires by itself when no manager sweeps. */
export async function writeManagerAlive(ctx: JtmContext, now: number, intervalMs: number): Promise<void> {
  const value: ManagerAlive = {
    host: hostname(),
    pid: process.pid,
    last_sweep: now,
    last_sweep_at: new Date(now).toISOString(),
    sweep_interval_ms: intervalMs,
  };
  await ctx.redis.set(
    ctx.keys.managerAlive,
    JSON.stringify(value),
    'PX',
    Math.max(1000, intervalMs * ALIVE_INTERVALS),
  );
}

/**
 * The last sweep of any manager, if one happened within its liveness window; works from any host. With
 * several shards, a manager is alive only when every shard was swept: the answer is the oldest shard's.
 */
export async function readManagerAlive(ctx: JtmContext): Promise<ManagerAlive | undefined> {
  const shards = allShards(ctx);
  const each = await Promise.all(shards.map(readShardAlive));
  if (each.some(a => a === undefined)) {
    // "No manager" from a replica re-syncing after a failover (empty) is Redis unavailable, not a negative.
    for (const [i, a] of each.entries()) if (a === undefined) await refuseReplica(shards[i] as JtmContext);
    return undefined;
  }
  return (each as ManagerAlive[]).reduce((a, b) => (b.last_sweep < a.last_sweep ? b : a));
}

async function readShardAlive(ctx: JtmContext): Promise<ManagerAlive | undefined> {
  const raw = await ctx.redis.get(ctx.keys.managerAlive);
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as ManagerAlive;
  } catch {
    return undefined;
  }
}
