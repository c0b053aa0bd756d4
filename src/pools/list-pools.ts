import { stripVTControlCharacters } from 'node:util';

import { allShards, forPool, type JtmContext } from '../context.js';
import { refuseReplica } from '../redis/replica-check.js';
import { openQueueOf } from './pool-queue.js';
import { readPoolJobs } from '../slurm/slurm-jobs.js';
import { listLiveWorkers, type LiveWorker } from './live-workers.js';
import { getPool, listPoolNames, type PoolEntry } from './pool-registry.js';

export interface SlurmJobEntry {
  id: string;
  state?: string;
  slots?: number;
  [field: string]: unknown;
}

export interface PoolInfo extends PoolEntry {
  /** Live workers that take any task, and their slots. */
  live_workers: number;
  live_slots: number;
  /** Live workers draining before their end: they take only tasks that fit in what is left. */
  draining_workers: number;
  draining_slots: number;
  /** Live workers that take no task for now, and why: `log dir full`, `low memory`, each once (the sentences in paused_why). */
  paused_workers: number;
  paused_slots: number;
  paused: string[];
  paused_why: string[];
  /** When its last task ended (ms), from its recent-ends index (an hour kept): activity a submit does not show. */
  last_end?: number;
  waiting: number;
  active: number;
  delayed: number;
  slurm_jobs: SlurmJobEntry[];
  /**
   * The manager's failing sbatch for the pool, while it retries: Slurm's message, failures in a row and when it
   * tries again (the pool's provisioning state). Only the manager's log said so (adversary 18).
   */
  slurm_error?: { message: string; failures: number; retry_at?: number };
}

/** Jobs that still count as work for a pool (anything not finished). */
export const UNFINISHED_STATES = ['wait', 'active', 'delayed', 'prioritized', 'waiting-children'] as const;

/**
 * Every pool with its live workers, queue counts and Slurm jobs, from every shard: the registered ones (a
 * submit registers its pool) and those only a live worker names (started ahead of the work, or whose tasks
 * are all gone): check-worker counted them while `jtm pools` did not list them.
 */
export async function listPools(anyShard: JtmContext): Promise<PoolInfo[]> {
  const perShard = await Promise.all(allShards(anyShard).map(listShardPools));
  // "no pools" from a replica re-syncing after a failover is Redis unavailable (refuseReplica).
  if (perShard.every(p => p.length === 0)) await refuseReplica(anyShard);
  return perShard.flat().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** One pool's row, as listPools gives it (from its own shard), or undefined when no such pool is registered. */
export async function getPoolInfo(anyShard: JtmContext, name: string): Promise<PoolInfo | undefined> {
  const ctx = forPool(anyShard, name);
  const workers = await listLiveWorkers(ctx);
  if (!(await poolNames(ctx, workers)).includes(name)) return undefined;
  return poolInfo(ctx, name, workers);
}

async function listShardPools(ctx: JtmContext): Promise<PoolInfo[]> {
  const workers = await listLiveWorkers(ctx);
  const out: PoolInfo[] = [];
  for (const name of await poolNames(ctx, workers)) out.push(await poolInfo(ctx, name, workers));
  return out;
}

/** The registered pools of a shard and those its live workers name. */
async function poolNames(ctx: JtmContext, workers: readonly LiveWorker[]): Promise<string[]> {
  const names = new Set(await listPoolNames(ctx));
  for (const w of workers) if (w.state !== 'stopping') names.add(w.pool);
  return [...names];
}

/** A pool's row: its registry entry, its live workers among `workers`, its queue counts and Slurm jobs. */
async function poolInfo(
  ctx: JtmContext,
  name: string,
  workers: Awaited<ReturnType<typeof listLiveWorkers>>,
): Promise<PoolInfo> {
  const entry = (await getPool(ctx, name)) ?? { name, kind: 'manual' as const };
  const mine = workers.filter(w => w.pool === name && w.state === 'running');
  const draining = workers.filter(w => w.pool === name && w.state === 'draining');
  const paused = workers.filter(w => w.pool === name && w.state === 'paused');
  const queue = openQueueOf<unknown>(ctx, name);
  let counts: Record<string, number>;
  try {
    counts = await queue.getJobCounts(...UNFINISHED_STATES);
  } finally {
    await queue.close();
  }
  // Three reads of the pool's own keys, sent together: one round trip instead of three per pool (the dashboard
  // and every metrics scrape list every pool).
  const [lastEnd, jobs, error] = await Promise.all([
    lastEndOf(ctx, name),
    slurmJobs(ctx, name),
    slurmError(ctx, name),
  ]);
  return {
    ...entry,
    live_workers: mine.length,
    live_slots: mine.reduce((n, w) => n + w.slots, 0),
    draining_workers: draining.length,
    draining_slots: draining.reduce((n, w) => n + w.slots, 0),
    paused_workers: paused.length,
    paused_slots: paused.reduce((n, w) => n + w.slots, 0),
    paused: [...new Set(paused.map(w => w.paused || 'paused'))],
    paused_why: [...new Set(paused.map(w => w.paused_why ?? '').filter(Boolean))],
    last_end: lastEnd,
    waiting: (counts['wait'] ?? 0) + (counts['prioritized'] ?? 0),
    active: counts['active'] ?? 0,
    delayed: counts['delayed'] ?? 0,
    slurm_jobs: jobs,
    ...error,
  };
}

/** The pool's failing sbatch, from the state the manager's provisioning keeps (`last_error`, `failures`). */
async function slurmError(ctx: JtmContext, pool: string): Promise<Pick<PoolInfo, 'slurm_error'>> {
  const [message, failures, retryAt] = await ctx.redis.hmget(
    ctx.keys.poolSlurmState(pool),
    'last_error',
    'failures',
    'retry_at',
  );
  if (!message) return {};
  const retry = Number(retryAt);
  return {
    slurm_error: {
      message,
      failures: Number(failures ?? 0),
      ...(Number.isFinite(retry) && retry > 0 ? { retry_at: retry } : {}),
    },
  };
}

/** The pool's Slurm jobs, from the one reader of the registry the provisioning keeps. */
async function slurmJobs(ctx: JtmContext, pool: string): Promise<SlurmJobEntry[]> {
  return [...(await readPoolJobs(ctx, pool))].map(([id, job]) => ({ ...job, id }));
}

/** `2 +1 draining +1 paused (log dir full)`: the live count, then those not taking every task, and why. */
function withHeld(live: number, draining: number, paused: number, p: PoolInfo): string {
  let text = String(live);
  if (draining > 0) text += ` +${draining} draining`;
  if (paused > 0) text += ` +${paused} paused (${p.paused.join(', ')})`;
  return text;
}

/** One line per pool for people: name, kind, workers/slots, waiting/active, Slurm jobs, idle time. */
export function formatPools(pools: readonly PoolInfo[], now = Date.now()): string {
  if (pools.length === 0) return 'no pools';
  const rows = [['POOL', 'KIND', 'WORKERS', 'SLOTS', 'WAITING', 'ACTIVE', 'SLURM', 'IDLE', 'CREATED']];
  for (const p of pools) {
    rows.push([
      p.name,
      p.kind,
      withHeld(p.live_workers, p.draining_workers, p.paused_workers, p),
      withHeld(p.live_slots, p.draining_slots, p.paused_slots, p),
      String(p.waiting + p.delayed),
      String(p.active),
      p.slurm_jobs.length > 0
        ? p.slurm_jobs.map(j => `${j.id}:${j.state ?? '?'}`).join(',')
        : p.slurm_error
          ? 'sbatch failing'
          : '-',
      idleText(p, now),
      p.created_at ? new Date(p.created_at).toISOString() : '-',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map(r => r[c]!.length)));
  const table = rows
    .map(r =>
      r
        .map((v, c) => v.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
  // Below the table, one line per pool whose sbatch fails: the message is too long for a column.
  const errors = pools
    .filter(p => p.slurm_error)
    .map(p => `${p.name}: ${slurmErrorText(p.slurm_error!, now)}`);
  return errors.length === 0 ? table : `${table}\n\n${errors.join('\n')}`;
}

/** "sbatch failed 2 times in a row, next try in 40s: <Slurm's message>". */
export function slurmErrorText(e: NonNullable<PoolInfo['slurm_error']>, now = Date.now()): string {
  const times = e.failures > 0 ? ` ${e.failures} time${e.failures === 1 ? '' : 's'} in a row` : '';
  const next =
    e.retry_at !== undefined && e.retry_at > now
      ? `, next try in ${Math.max(1, Math.round((e.retry_at - now) / 1000))}s`
      : '';
  // One line, no terminal controls: the message is Slurm's stderr (or a site's sbatch wrapper's), printed to a
  // terminal as it came, an escape sequence or a second line included.
  const message = stripVTControlCharacters(e.message)
    .replace(/\p{Cc}+/gu, ' ')
    .trim();
  return `sbatch failed${times}${next}: ${message}`;
}

/**
 * How long the pool has done nothing: '-' while a task runs, else since its last submit or its last task's
 * end, whichever came later. Counted from the last submit alone, a pool running 16 tasks showed "idle 33s"
 * (adversary 11 L7).
 */
function idleText(p: PoolInfo, now: number): string {
  if (p.active > 0) return '-';
  const last = Math.max(p.last_activity ?? 0, p.last_end ?? 0);
  return last > 0 ? `${Math.max(0, Math.round((now - last) / 1000))}s` : '-';
}

/** When the pool's last task ended (ms), or undefined when none ended within its recent-ends window. */
export async function lastEndOf(ctx: JtmContext, pool: string): Promise<number | undefined> {
  const [, score] = await ctx.redis.zrange(ctx.keys.poolRecentEnds(pool), -1, -1, 'WITHSCORES');
  return score === undefined ? undefined : Number(score);
}
