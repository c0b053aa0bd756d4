import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  realpathSync,
  statSync,
  unlinkSync,
  writeFileSync,
  type Stats,
} from 'node:fs';
import { dirname, join } from 'node:path';

import { InvalidInputError, permissionCode } from './errors.js';

/** The directories checked, by the path JTM uses: what they were (a directory swapped since is checked again). */
const checked = new Map<string, { dev: number; ino: number }>();

/**
 * Makes `dir` (and its parents) if missing, then makes sure no other user can put anything in it, since JTM
 * writes files there that other processes then trust: a task's output and `times` (tasks/), its resource samples
 * (resource/), a batch script that sbatch runs as this user (job/). It must be this user's directory — "this
 * user" being whoever owns a file this process creates there, so that root on NFS with root_squash (its files
 * are nobody's) and an id-mapped mount are judged by what they really get — and a group or others' write
 * permission is taken away. A symbolic link in its place is followed only when the directory holding it is this
 * user's alone (a link to scratch the user made). In a shared log directory another user could otherwise create
 * `tasks/` first, writable by all, and put there a symbolic link named after a coming task's output: the worker
 * then emptied and wrote the victim's own files through it (adversary 12 D1), or wrote the output into a file
 * that user reads. `what` names the setting in the message.
 */
export function ensurePrivateDir(dir: string, what: string): void {
  makeDirs(dir);
  const link = lstatSync(dir);
  if (link.isSymbolicLink()) {
    const parent = dirname(dir);
    const holder = statSync(parent);
    if (holder.uid !== ownerHere(parent, what) || (holder.mode & 0o022) !== 0)
      throw new InvalidInputError(
        `${what}: ${dir} is a symbolic link in a directory others may write: not a directory of this user's`,
      );
  }
  // Opened once and judged by its descriptor: a directory swapped between a look and a chmod cannot redirect it.
  const fd = openSync(realpathSync(dir), constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    const owner = ownerHere(dir, what, st);
    if (st.uid !== owner)
      throw new InvalidInputError(
        `${what}: ${dir} belongs to another user (uid ${st.uid}), who could replace what JTM writes there: use a directory of your own`,
      );
    if ((st.mode & 0o022) !== 0) fchmodSync(fd, st.mode & 0o7755);
    checked.set(dir, { dev: st.dev, ino: st.ino });
  } finally {
    closeSync(fd);
  }
}

/**
 * Before writing there again: the directory is still the one ensurePrivateDir checked (a stat), else it is
 * checked again — one swapped by someone who may write its parent (a group's project directory) is refused.
 */
export function ensureStillPrivate(dir: string, what: string): void {
  const was = checked.get(dir);
  const st = statSync(dir, { throwIfNoEntry: false });
  if (was && st && st.dev === was.dev && st.ino === was.ino) return;
  ensurePrivateDir(dir, what);
}

/**
 * Who owns what this process creates in `dir`: its own uid, or what the file system maps it to. Another user's
 * directory this process may not write is refused here with its owner named.
 */
function ownerHere(dir: string, what: string, st: Stats = statSync(dir)): number {
  const probe = join(dir, `.jtm-owner-${process.pid}-${Math.random().toString(36).slice(2)}`);
  try {
    writeFileSync(probe, '', { flag: 'wx', mode: 0o600 });
  } catch (err) {
    const uid = process.getuid?.();
    if (permissionCode(err) && uid !== undefined && st.uid !== uid)
      throw new InvalidInputError(
        `${what}: ${dir} belongs to another user (uid ${st.uid}) and this user may not write it: use a directory of your own`,
      );
    throw err;
  }
  try {
    return lstatSync(probe).uid;
  } finally {
    unlinkSync(probe);
  }
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
