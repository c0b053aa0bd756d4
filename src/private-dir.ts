import { chmodSync, lstatSync, mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';

import { InvalidInputError } from './errors.js';

/**
 * Makes `dir` (and its parents) if missing, then makes sure no other user can put anything in it, since JTM
 * writes files there that other processes then trust: a task's output and `times` (tasks/), its resource samples
 * (resource/), a batch script that sbatch runs as this user (job/). It must be a directory, not a symbolic link,
 * owned by this process's user; a group or others' write permission is taken away. In a shared log directory (a
 * project's or /tmp, as a site may set JTM_LOG_DIR), another user could create `tasks/` first, writable by all,
 * and put there a symbolic link named after a coming task's output: the worker then emptied and wrote the
 * victim's own files through it (adversary 12 D1), or wrote the output into a file that user reads. `what`
 * names the setting in the message.
 */
export function ensurePrivateDir(dir: string, what: string): void {
  makeDirs(dir);
  const st = lstatSync(dir);
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new InvalidInputError(
      `${what}: ${dir} is a ${st.isSymbolicLink() ? 'symbolic link' : 'file'}, not a directory of this user's`,
    );
  }
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) {
    throw new InvalidInputError(
      `${what}: ${dir} belongs to another user (uid ${st.uid}), who could replace what JTM writes there: use a directory of your own`,
    );
  }
  if ((st.mode & 0o022) !== 0) chmodSync(dir, st.mode & 0o7755);
}

/**
 * `mkdir -p`, one level at a time: Node's recursive mkdir spun for ever on a path under /proc (a log directory
 * there hung the worker's start); a level that exists but is not a directory fails with ENOTDIR.
 */
function makeDirs(dir: string): void {
  const missing: string[] = [];
  for (let cur = dir; ; cur = dirname(cur)) {
    const st = statSync(cur, { throwIfNoEntry: false });
    if (st) {
      if (!st.isDirectory()) throw Object.assign(new Error(`${cur} is not a directory`), { code: 'ENOTDIR' });
      break;
    }
    missing.push(cur);
    if (dirname(cur) === cur) break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d, { mode: 0o700 });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}
