import type { JtmContext } from '../context.js';
import { parseDuration } from '../durations.js';
import { isDynamicSpec, memoryMegabytes, type PoolSpec } from '../pool-spec.js';
import { runScript } from '../redis/run-script.js';
import { MERGE_POOL_SPEC, SHRINK_POOL_SPEC } from '../redis/scripts.js';
import type { CallSize } from './call-sizes.js';

/** What the registry keeps per pool (`pool:<name>` hash). */
export interface PoolEntry {
  name: string;
  kind: 'manual' | 'dynamic';
  spec?: PoolSpec;
  created_at?: number;
  last_activity?: number;
}

/**
 * Records that a pool is in use: creates its registry entry on first use, refreshes its activity time.
 * A spec with a `time` on a Slurm cluster makes the pool dynamic (provisioned); the stored spec keeps the
 * longest time, the most memory and CPUs of all its submits' specs, and the rest of the latest
 * (MERGE_POOL_SPEC), until the manager fails the calls Slurm cannot satisfy and shrinks it (shrinkPoolSpec).
 */
export async function touchPool(
  ctx: JtmContext,
  name: string,
  spec?: PoolSpec,
  now = Date.now(),
): Promise<void> {
  await touchPools(ctx, new Map([[name, spec]]), now);
}

/** touchPool for many pools in one transaction: a bulk submit over 50 pools sends one, not 50. */
export async function touchPools(
  ctx: JtmContext,
  pools: ReadonlyMap<string, PoolSpec | undefined>,
  now = Date.now(),
): Promise<void> {
  if (pools.size === 0) return;
  const multi = ctx.redis.multi();
  const specs: (() => Promise<unknown>)[] = [];
  for (const [name, spec] of pools) {
    const key = ctx.keys.pool(name);
    multi.sadd(ctx.keys.pools, name);
    multi.hsetnx(key, 'name', name);
    multi.hsetnx(key, 'created_at', now);
    multi.hsetnx(key, 'kind', 'manual');
    multi.hset(key, 'last_activity', now);
    if (spec && isDynamicSpec(spec)) {
      const time = spec.time ? parseDuration(spec.time) : 0;
      specs.push(() =>
        runScript(
          ctx.redis,
          MERGE_POOL_SPEC,
          [key],
          [JSON.stringify(spec), time, memoryMegabytes(spec.mem), spec.cpu ?? 0],
        ),
      );
    }
  }
  // After the MULTI, which refreshes last_activity: a manager dropping the pool as idle meanwhile sees the
  // refresh and leaves it (sent before it, the spec could be dropped and the pool recreated manual).
  await multi.exec();
  await Promise.all(specs.map(write => write()));
}

/** A dynamic pool's spec with its version (bumped by each submit's merge), read together; undefined if none. */
export async function readPoolSpecVersion(
  ctx: JtmContext,
  name: string,
): Promise<{ spec: PoolSpec; seq: string } | undefined> {
  const [spec, seq] = await ctx.redis.hmget(ctx.keys.pool(name), 'spec', 'spec_seq');
  return spec ? { spec: JSON.parse(spec) as PoolSpec, seq: seq ?? '0' } : undefined;
}

/**
 * Sets a dynamic pool's spec to `spec`, sized `size`, unless a submit merged one since version `seq` was read
 * (SHRINK_POOL_SPEC). Returns whether it was written.
 */
export async function shrinkPoolSpec(
  ctx: JtmContext,
  name: string,
  seq: string,
  spec: PoolSpec,
  size: CallSize,
): Promise<boolean> {
  const done = await runScript(
    ctx.redis,
    SHRINK_POOL_SPEC,
    [ctx.keys.pool(name)],
    [seq, JSON.stringify(spec), size.time, size.mem, size.cpu],
  );
  return Number(done) === 1;
}

export async function getPool(ctx: JtmContext, name: string): Promise<PoolEntry | undefined> {
  const h = await ctx.redis.hgetall(ctx.keys.pool(name));
  if (!h['name']) return undefined;
  return {
    name: h['name'],
    kind: h['kind'] === 'dynamic' ? 'dynamic' : 'manual',
    spec: h['spec'] ? (JSON.parse(h['spec']) as PoolSpec) : undefined,
    created_at: h['created_at'] ? Number(h['created_at']) : undefined,
    last_activity: h['last_activity'] ? Number(h['last_activity']) : undefined,
  };
}

export async function listPoolNames(ctx: JtmContext): Promise<string[]> {
  return (await ctx.redis.smembers(ctx.keys.pools)).sort();
}
