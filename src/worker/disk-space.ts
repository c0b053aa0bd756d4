import { constants } from 'node:fs';
import { access, statfs } from 'node:fs/promises';
import { dirname } from 'node:path';

import { formatBytes } from './memory-limit.js';

/**
 * Below this many free bytes on the filesystem of its log dir a worker takes no task: every task's .out and
 * .err go there by default, so on a full disk each task it took failed "exit code 1" with an empty .err and no
 * log line, as fast as the worker could take them (a black hole for half a pool's calls).
 */
export const LOG_DIR_FREE_MARGIN_BYTES = 1024 * 1024;
/** How long a reading of the log dir's free space is reused (one statfs a second at most, not one per claim). */
const FREE_SPACE_TTL_MS = 1000;
/**
 * Below this much free space a reading is not reused: a running task can fill the rest within the second, and
 * every task claimed on the stale reading failed at once (a backlog of 30 emptied in 8 s by one worker).
 */
const FREE_SPACE_FRESH_BELOW_BYTES = 256 * 1024 * 1024;

/** Bytes an unprivileged user may still write on the filesystem holding `path`; undefined when unknown. */
/** Whether `dir` is on a read-only filesystem (its write access refused with EROFS). */
async function readOnly(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.W_OK);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EROFS';
  }
}

export async function freeBytes(path: string): Promise<number | undefined> {
  try {
    const s = await statfs(path, { bigint: false });
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

/**
 * Why a failed task failed, when one of its output targets is on a full disk: "the disk holding <dir> is full:
 * N bytes free" (the shell's own message went to the full .err, if anywhere). Read only after a failure.
 */
export async function fullDiskReason(paths: readonly string[]): Promise<string | undefined> {
  // Devices (/dev/null, /dev/stdout) are not files on a disk: /dev's own size says nothing.
  const files = paths.filter(p => !p.startsWith('/dev/') && !p.startsWith('/proc/'));
  for (const dir of new Set(files.map(p => dirname(p)))) {
    // A read-only disk is not full, whatever it has free: "EROFS …; the disk … is full: 64 KB free" misled
    // (adversary 38 L3).
    if (await readOnly(dir)) continue;
    const free = await freeBytes(dir);
    if (free !== undefined && free < LOG_DIR_FREE_MARGIN_BYTES) {
      return `the disk holding ${dir} is full: ${human(free)} free`;
    }
  }
  return undefined;
}

/** The worker's check before each claim: whether its log dir's disk is (nearly) full, cached for a second. */
export class LogDirSpace {
  private last: { at: number; free: number | undefined } | undefined;

  constructor(private readonly logDir: string) {}

  /** Why no task may start here now (the log dir's disk is full), or undefined. */
  async tooLow(now = Date.now()): Promise<string | undefined> {
    const last = this.last;
    const stale =
      !last ||
      now - last.at >= FREE_SPACE_TTL_MS ||
      now < last.at ||
      (last.free !== undefined && last.free < FREE_SPACE_FRESH_BELOW_BYTES);
    if (stale) this.last = { at: now, free: await freeBytes(this.logDir) };
    const free = this.last?.free;
    if (free === undefined || free >= LOG_DIR_FREE_MARGIN_BYTES) return undefined;
    return `the disk holding the log dir ${this.logDir} is full (${human(free)} free, below ${human(LOG_DIR_FREE_MARGIN_BYTES)})`;
  }

  /** Drops the reading: the next check reads the disk (a task has just failed on a full one). */
  forget(): void {
    this.last = undefined;
  }
}

/** Free space as people read it: bytes and KB below a MB (formatBytes would round them to "0 MB"). */
function human(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return formatBytes(bytes);
}
