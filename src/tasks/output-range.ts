import { constants } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';

import { permissionCode } from '../errors.js';

/** Largest read: what one `write` gets. */
const CHUNK = 1024 * 1024;

/** How a reader knows that a file still holds the output it reads (not another task's, nor a later attempt's). */
export interface RangeCheck {
  /**
   * Bytes the output holds at the end of the range (what the Redis copy has there, read by the worker from this
   * same file): the file must hold the same bytes there. While the task runs this is the only check there is.
   */
  next?: Buffer;
  /** The size and modification time the record gives the ended run's file: the file must still have them. */
  ended?: { bytes: number; mtime?: number };
}

/** How far a range was written: `reached` (the range's end when whole); `why` it stopped short. */
export interface RangeResult {
  reached: number;
  why?: string;
}

/**
 * Writes bytes [from, to) of a task's stdout file, once `check` says the file still holds that task's output.
 * What a follower uses when the Redis copy (a tail) no longer has a part of the output: the worker copied the
 * file, and the file keeps everything. Errors of the file are a `why` (nothing is thrown for them: the reader
 * says what is missing and goes on); an error of `write` is the caller's and is thrown.
 */
export async function writeFileRange(
  path: string,
  from: number,
  to: number,
  check: RangeCheck,
  write: (chunk: Buffer) => void | Promise<void>,
): Promise<RangeResult> {
  let handle: FileHandle;
  try {
    // A FIFO or a device named as stdout would block an open (a FIFO without writer) or never end: not read.
    if (!(await stat(path)).isFile()) return { reached: from, why: `${path} is not a regular file` };
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    return { reached: from, why: unreadable(path, err) };
  }
  try {
    const why = await mismatch(handle, path, to, check);
    if (why) return { reached: from, why };
    let at = from;
    while (at < to) {
      const want = Math.min(CHUNK, to - at);
      const buf = Buffer.allocUnsafe(want);
      let got: number;
      try {
        got = (await handle.read(buf, 0, want, at)).bytesRead;
      } catch (err) {
        return { reached: at, why: unreadable(path, err) };
      }
      if (got === 0) return { reached: at, why: `${path} got shorter while it was read` };
      // Checked again for each part, after it was read and before it is written: a slow reader takes seconds per
      // part, and a file rewritten meanwhile (its task started over, or run again) gave the new output's bytes
      // at the old output's offsets, with no gap said (adversary 28 F1).
      const changed = await mismatch(handle, path, to, check);
      if (changed) return { reached: at, why: changed };
      await write(buf.subarray(0, got));
      at += got;
    }
    return { reached: at };
  } finally {
    await handle.close().catch(() => {});
  }
}

/** Why the open file is not the output being read (undefined: it is). */
async function mismatch(
  handle: FileHandle,
  path: string,
  to: number,
  check: RangeCheck,
): Promise<string | undefined> {
  let size: number;
  let mtime: number;
  try {
    ({ size, mtimeMs: mtime } = await handle.stat());
  } catch (err) {
    return unreadable(path, err);
  }
  const { next, ended } = check;
  if (ended && (size !== ended.bytes || (ended.mtime !== undefined && mtime !== ended.mtime)))
    return `${path} was rewritten after the task ended`;
  const need = to + (next?.length ?? 0);
  if (size < need)
    return `${path} holds ${size} bytes, not the ${need} of this output: it is not this task's here`;
  if (!next || next.length === 0) return undefined;
  const here = Buffer.allocUnsafe(next.length);
  try {
    const { bytesRead } = await handle.read(here, 0, next.length, to);
    if (bytesRead === next.length && here.equals(next)) return undefined;
  } catch (err) {
    return unreadable(path, err);
  }
  return `${path} holds other bytes than this output: it is not this task's here`;
}

function unreadable(path: string, err: unknown): string {
  const perm = permissionCode(err);
  if (perm) return `the whole output is in ${path}, which this user cannot read (${perm})`;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return `${path} cannot be read here (${code ?? String(err)})`;
}
