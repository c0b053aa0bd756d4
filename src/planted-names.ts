import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  openSync,
  renameSync,
  unlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';

/*
 * Files JTM writes (often as root) in directories other users may write: a Cromwell call's execution directory
 * when it is shared or sticky, where anyone can plant a name in advance. A symlink planted there made root
 * write through it into its own files, and a FIFO made the worker's synchronous open wait for a reader for
 * ever, its heartbeats with it (adversary 35 F2; the rc file already had this care, adversary 12). So: a new
 * file is created under a random name beside its path, never opened if something is there already (O_EXCL
 * follows no symlink and opens no FIFO), and then linked or renamed into place; an existing file is appended
 * to only if it is a regular file of one link, opened without following a symlink or waiting on a FIFO.
 */

/**
 * Writes `text` to a new file beside `path` with a random name (`.<name>.jtm-<hex>`), created exclusively,
 * mode 0666 less the umask; returns its path. The caller links or renames it into place, and removes it.
 */
export function writeTempBeside(path: string, text: string): string {
  const tmp = join(dirname(path), `.${basename(path)}.jtm-${randomBytes(6).toString('hex')}`);
  writeFileSync(tmp, text, { flag: 'wx' });
  return tmp;
}

/**
 * Puts a regular file holding `text` at `path`, replacing whatever non-directory was there (a symlink, a FIFO
 * or a hard link is replaced, not written through). Throws when it cannot.
 */
export function replaceFile(path: string, text: string): void {
  const tmp = writeTempBeside(path, text);
  try {
    renameSync(tmp, path);
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // the error that got us here is the one to report
    }
    throw err;
  }
}

/**
 * Appends `text` to `path` when it is a regular file with a single link, never creating one: a symlink is not
 * followed (ELOOP), a FIFO is not waited on (O_NONBLOCK; and not written), a hard link to another file
 * (another user's link to root's file) is left alone. Returns whether it was written; never throws.
 */
export function appendToRegularFile(path: string, text: string): boolean {
  let fd: number;
  try {
    fd = openSync(
      path,
      constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
  } catch {
    return false;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.nlink !== 1) return false;
    const bytes = Buffer.from(text);
    for (let at = 0; at < bytes.length;) at += writeSync(fd, bytes, at);
    return true;
  } catch {
    return false;
  } finally {
    closeSync(fd);
  }
}
