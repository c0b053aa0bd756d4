import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

import { InvalidInputError, PipeNotWrittenError } from './errors.js';
import { sleepSync } from './sleep-sync.js';

/**
 * Reads a file the user names (`--config`, `submit -f`) once, whole, as UTF-8: a regular file, or a pipe
 * (`--config <(...)`, a FIFO, /dev/stdin), which can be read only once. Anything else (a directory, a
 * device such as /dev/zero, a socket) is refused, and so is more than `maxBytes`, which also bounds a pipe
 * that never ends. `what` names the file in messages. `pipes: false`: a regular file only (a file read by
 * every command, such as the site config, cannot be a pipe that only the first would read). `pipeWaitMs`: how
 * long a pipe may take to be written and closed (unbounded without it: `submit -f`'s generator may take its time).
 */
export function readInputFile(
  path: string,
  what: string,
  maxBytes: number,
  opts: { pipes?: boolean; pipeWaitMs?: number } = {},
): string {
  const pipes = opts.pipes ?? true;
  const bounded = opts.pipeWaitMs !== undefined;
  let fd: number;
  try {
    // Without pipes, or with a bound, opened without waiting: opening a FIFO for reading waits for a writer, for
    // ever if none comes (a FIFO named as JTM_SITE_CONFIG hung every command that read it; one named by --config
    // hung every command, isalive included: adversary 34 M1).
    fd = openSync(path, pipes && !bounded ? 'r' : constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (err) {
    throw new InvalidInputError(`cannot read ${what} ${path}: ${codeOf(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() && !(pipes && st.isFIFO())) {
      const kind = st.isDirectory()
        ? 'a directory'
        : st.isCharacterDevice()
          ? 'a device'
          : st.isFIFO()
            ? 'a pipe'
            : 'not a file';
      throw new InvalidInputError(
        `cannot read ${what} ${path}: ${kind} (${pipes ? 'a regular file or a pipe' : 'a regular file'} is needed)`,
      );
    }
    if (st.isFile() && st.size > maxBytes) throw tooLarge(what, path, maxBytes);
    const deadline = st.isFIFO() && bounded ? Date.now() + (opts.pipeWaitMs ?? 0) : undefined;
    const late = (): boolean => deadline !== undefined && Date.now() >= deadline;
    // Whether a writer has been seen: a non-blocking read of a FIFO no one has opened for writing yet ends at
    // once (0 bytes, as at its end), so until a writer is seen that is waited through, within the bound.
    let writer = false;
    const chunks: Buffer[] = [];
    let total = 0;
    const buf = Buffer.alloc(64 * 1024);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, 0, buf.length, null);
      } catch (err) {
        // A non-blocking pipe with nothing yet: wait for the writer (sleepSync blocks without spinning).
        if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
          writer = true;
          if (late())
            throw new PipeNotWrittenError(what, path, opts.pipeWaitMs ?? 0, 'not closed by its writer');
          sleepSync(10);
          continue;
        }
        throw new InvalidInputError(`cannot read ${what} ${path}: ${codeOf(err)}`);
      }
      if (n === 0 && deadline !== undefined && !writer) {
        if (late()) throw new PipeNotWrittenError(what, path, opts.pipeWaitMs ?? 0, 'nothing written to it');
        sleepSync(10);
        continue;
      }
      if (n === 0) break;
      writer = true;
      total += n;
      if (total > maxBytes) throw tooLarge(what, path, maxBytes);
      chunks.push(Buffer.from(buf.subarray(0, n)));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    closeSync(fd);
  }
}

/**
 * Refuses a file that is not a regular one, opened without waiting: for a reader that must not block its
 * process (the programmatic API's configFile: opening a FIFO with no writer froze the whole host program, every
 * timer and socket of it: adversary 22 L4). A file that cannot be opened is left to the reader's own message.
 */
export function refuseNonRegularFile(path: string, what: string): void {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return;
  }
  try {
    if (!fstatSync(fd).isFile()) {
      throw new InvalidInputError(
        `cannot read ${what} ${path}: not a regular file (a regular file is needed)`,
      );
    }
  } finally {
    closeSync(fd);
  }
}

function tooLarge(what: string, path: string, maxBytes: number): InvalidInputError {
  return new InvalidInputError(`${what} ${path} is larger than ${maxBytes} bytes`);
}

function codeOf(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err as Error).message;
}
