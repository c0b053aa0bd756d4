import { lstat, opendir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import { byTaskShard, type JtmContext } from '../context.js';
import type { Logger } from '../logger.js';

/** How often a worker looks for expired files in its log dir (and once a minute after its start). */
export const PRUNE_INTERVAL_MS = 60 * 60_000;
export const FIRST_PRUNE_DELAY_MS = 60_000;
/** Old files whose records are looked up at once. */
const BATCH = 500;

/**
 * The files JTM names itself in a log dir, by directory: a task's default stdout/stderr and its /proc-mode
 * `times` file (`tasks/<id>.out|.err|.times`), and its resource CSV (`resource/<id>.csv`). Files a task named
 * itself are not JTM's to remove, wherever they are.
 */
const OWN_FILES: readonly [string, RegExp][] = [
  ['tasks', /^(\d+)\.(out|err|times)$/],
  ['resource', /^(\d+)\.csv$/],
];

/**
 * Removes JTM's own per-task files of `logDir` not written for longer than `retentionMs` and whose task
 * record no longer exists (`recordsExist`: one answer per id): nothing of JTM reads them again, and two files
 * per task (plus a CSV), never pruned, made millions of entries in one directory within a year at 50,000 tasks
 * a day — on a shared filesystem a directory that size is an outage of its own (adversary 8 I9). A task still
 * running after the retention (a silent week-long task) keeps its files: its record exists. The directory is
 * read as it is walked (not all its names at once), one file at a time, off the event loop; whatever cannot
 * be read or removed (another worker sharing the dir removed it first) is skipped. Returns how many went.
 */
export async function pruneLogDir(
  logDir: string,
  retentionMs: number,
  recordsExist: (ids: readonly number[]) => Promise<readonly boolean[]>,
  log: Logger,
  now = Date.now(),
): Promise<number> {
  const cutoff = now - retentionMs;
  let removed = 0;
  const flush = async (batch: { id: number; path: string }[]): Promise<void> => {
    if (batch.length === 0) return;
    const exists = await recordsExist(batch.map(f => f.id));
    for (const [i, f] of batch.entries()) {
      if (exists[i] !== false) continue;
      try {
        await unlink(f.path);
        removed++;
      } catch {
        // gone meanwhile
      }
    }
  };
  for (const [sub, pattern] of OWN_FILES) {
    const dir = join(logDir, sub);
    let entries;
    try {
      entries = await opendir(dir);
    } catch {
      continue;
    }
    let batch: { id: number; path: string }[] = [];
    for await (const entry of entries) {
      const m = pattern.exec(entry.name);
      if (!m || !entry.isFile()) continue;
      const path = join(dir, entry.name);
      try {
        const st = await lstat(path);
        if (!st.isFile() || st.mtimeMs >= cutoff) continue;
      } catch {
        continue;
      }
      batch.push({ id: Number(m[1]), path });
      if (batch.length >= BATCH) {
        await flush(batch);
        batch = [];
      }
    }
    await flush(batch);
  }
  if (removed > 0) log.info({ logDir, removed }, 'removed task files older than JTM_TASK_RETENTION');
  return removed;
}

/**
 * Whether each task's record still exists, asked of the task's own shard (its id says which): the log dir
 * holds the files of every worker of the node, other shards' pools included, and asked in this worker's
 * shard their records would all look gone. One pipeline per shard (a Cluster pipeline's keys share a node);
 * an error reads as "exists": a file is kept rather than removed on a doubt.
 */
export async function taskRecordsExist(ctx: JtmContext, ids: readonly number[]): Promise<boolean[]> {
  const out = new Array<boolean>(ids.length).fill(true);
  const places = ids.map((_, i) => i);
  await Promise.all(
    [...byTaskShard(ctx, places, i => ids[i] as number)].map(async ([shard, at]) => {
      const p = shard.redis.pipeline();
      for (const i of at) p.exists(shard.keys.task(ids[i] as number));
      const replies = (await p.exec().catch(() => null)) ?? [];
      at.forEach((i, n) => {
        const [err, v] = replies[n] ?? [new Error('no reply'), 1];
        out[i] = err !== null || v !== 0;
      });
    }),
  );
  return out;
}
