import { lstat, readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';

import type { Logger } from '../logger.js';

/** How often a worker looks for expired files in its log dir (and once a minute after its start). */
export const PRUNE_INTERVAL_MS = 60 * 60_000;
export const FIRST_PRUNE_DELAY_MS = 60_000;

/**
 * The files JTM names itself in a log dir, by directory: a task's default stdout/stderr and its /proc-mode
 * `times` file (`tasks/<id>.out|.err|.times`), and its resource CSV (`resource/<id>.csv`). Files a task named
 * itself are not JTM's to remove, wherever they are.
 */
const OWN_FILES: readonly [string, RegExp][] = [
  ['tasks', /^\d+\.(out|err|times)$/],
  ['resource', /^\d+\.csv$/],
];

/**
 * Removes JTM's own per-task files of `logDir` not written for longer than `retentionMs`: their records have
 * expired (JTM_TASK_RETENTION), so nothing of JTM reads them again, and two files per task (plus a CSV) added
 * up to millions of entries in one directory within a year at 50,000 tasks a day — on a shared filesystem a
 * directory that size is an outage of its own (adversary 8 I9). One file at a time, off the event loop;
 * whatever cannot be read or removed (another worker sharing the dir removed it first) is skipped.
 * Returns how many files were removed.
 */
export async function pruneLogDir(
  logDir: string,
  retentionMs: number,
  log: Logger,
  now = Date.now(),
): Promise<number> {
  const cutoff = now - retentionMs;
  let removed = 0;
  for (const [sub, pattern] of OWN_FILES) {
    const dir = join(logDir, sub);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!pattern.test(name)) continue;
      const path = join(dir, name);
      try {
        const st = await lstat(path);
        if (!st.isFile() || st.mtimeMs >= cutoff) continue;
        await unlink(path);
        removed++;
      } catch {
        // gone meanwhile, or not ours to remove
      }
    }
  }
  if (removed > 0) log.info({ logDir, removed }, 'removed task files older than JTM_TASK_RETENTION');
  return removed;
}
