import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchmodSync,
  fstatSync,
  lstatSync,
  openSync,
  readlinkSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import type { JtmContext } from '../context.js';
import { InvalidInputError, toError } from '../errors.js';
import { validatePoolName } from '../pool-spec.js';
import { validateWorkflowFilter, type ReportData, type ReportFilter } from './analyse.js';
import { buildReport } from './build-report.js';
import type { ReadProgress } from './read-tasks.js';
import { HTML_START, reportHtml } from './report-html.js';
import { sleepSync } from '../sleep-sync.js';

export interface ReportOptions {
  filter: ReportFilter;
  /** Where the HTML goes; undefined: no file (--json alone). */
  output?: string;
  /** Progress lines for people (stderr); stdout stays for results. */
  progress?: (line: string) => void;
}

/** Progress as lines: each phase once it starts, then at most every half second, and its end. */
export function progressLines(write: (line: string) => void): (p: ReadProgress) => void {
  let phase = '';
  let last = 0;
  return p => {
    const now = Date.now();
    if (p.phase === 'filter') {
      write(`report: ${p.done} of ${p.total} task records match the filters (-p, --workflow, --since)\n`);
      return;
    }
    const end = p.total > 0 && p.done >= p.total;
    if (p.phase === phase && !end && now - last < 500) return;
    phase = p.phase;
    last = now;
    const what = { scan: 'task ids found', records: 'task records read', samples: 'sample streams read' }[
      p.phase
    ];
    write(`report: ${p.done}${p.total > 0 ? `/${p.total}` : ''} ${what}\n`);
  };
}

/** The report's output, open from before the first record is read until the document is complete. */
interface Output {
  fd: number;
  /** The document is complete: the file takes its place. */
  commit(): void;
  /** The report failed: what was written goes, whatever stood at the path before stays. */
  discard(): void;
}

/**
 * Opens the output before any record is read: a report of 100,000 tasks takes ~20 s to read, and a path that
 * cannot be written (a directory, a missing folder, `/dev/full`) must not be found only after that. The
 * document's first bytes are written at once so that a device or disk without room fails now too. A regular
 * file (or a new one) is written beside its path and renamed over it when complete, so a report that fails
 * half way leaves the previous one intact; anything else (a device, a FIFO, /dev/stdout) is written in place.
 *
 * The path may be in a directory other users can write (/tmp, a shared project folder), where they can plant
 * names in advance: a temp file named by the pid was opened through a symlink planted at every pid, and root's
 * report overwrote a root file (adversary 35 F1). So the temp file has a random name and is created, never
 * opened (O_EXCL, O_NOFOLLOW), mode 0600 until complete; the rename replaces a symlink planted at the path
 * instead of writing through it. A symlink at the path is followed to a device or FIFO only when its owner is
 * this process's user or the directory's owner (the kernel's protected_symlinks rule, which a host may not set);
 * and an in-place open neither creates, truncates nor follows a symlink, and writes only if what it opened is
 * still not a regular file (one swapped in after the check is refused, unwritten).
 */
function openOutput(file: string): Output {
  let inPlace = false;
  let fifo = false;
  let follow = false;
  // One of this process's descriptors by name (`-o /dev/stdout > run.html`): written through that descriptor,
  // whatever it leads to. Taken for a regular file, it was written beside its name and renamed over it: root's
  // report would have replaced the host's /dev/stdout link with a file (review of adversary 35 F1's fix), and
  // /proc/self/fd/1 failed (no file can be made in /proc/self/fd). Not opened again either: a second open has an
  // offset of its own, and the result line printed on stdout wrote over the report's first bytes.
  const own = ownDescriptor(file);
  if (own !== undefined) {
    try {
      writeAll(own, HTML_START);
    } catch (err) {
      throw new InvalidInputError(`cannot write ${file}: ${toError(err).message}`);
    }
    return { fd: own, commit: () => {}, discard: () => {} };
  }
  try {
    const link = lstatSync(file);
    follow = link.isSymbolicLink() && trustedLink(file, link.uid);
    const st = follow ? statSync(file) : link;
    // An untrusted symlink is a name to replace, as a missing file is.
    inPlace = !st.isFile() && !st.isSymbolicLink();
    fifo = st.isFIFO();
  } catch {
    // no file there yet (or a symlink to nothing): written beside it, as a regular one
  }
  const path = inPlace
    ? file
    : join(dirname(file), `.${basename(file)}.${randomBytes(8).toString('hex')}.tmp`);
  let fd: number | undefined;
  let created = false;
  // Best effort: the error that got us here is the one to report.
  const discard = (): void => {
    if (fd !== undefined) ignoreErrors(() => closeSync(fd as number));
    if (created) ignoreErrors(() => unlinkSync(path));
  };
  try {
    if (inPlace) {
      // A FIFO without blocking: with nothing reading it, the open answers ENXIO at once (it hung for good).
      fd = openSync(
        path,
        constants.O_WRONLY | (fifo ? constants.O_NONBLOCK : 0) | (follow ? 0 : constants.O_NOFOLLOW),
      );
      if (fstatSync(fd).isFile()) throw new Error('it was replaced by a regular file while being opened');
    } else {
      fd = openSync(
        path,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      created = true;
    }
    writeAll(fd, HTML_START);
  } catch (err) {
    discard();
    const nobody = fifo && (err as NodeJS.ErrnoException).code === 'ENXIO';
    throw new InvalidInputError(
      `cannot write ${file}: ${nobody ? 'it is a FIFO that nothing reads' : toError(err).message}`,
    );
  }
  const opened = fd;
  return {
    fd: opened,
    commit: () => {
      // The mode a new file gets (0666 less the umask), now that it is complete.
      if (!inPlace) fchmodSync(opened, 0o666 & ~process.umask());
      closeSync(opened);
      if (!inPlace) renameSync(path, file);
    },
    discard,
  };
}

/** The descriptor of this process that `file` names (/dev/stdout, /dev/fd/N, /proc/self/fd/N, or a link to one). */
function ownDescriptor(file: string): number | undefined {
  const STD: Record<string, number> = { '/dev/stdin': 0, '/dev/stdout': 1, '/dev/stderr': 2 };
  const FD = new RegExp(`^/(?:dev/fd|proc/(?:self|thread-self|${process.pid})/fd)/(\\d+)$`);
  let path = resolve(file);
  for (let hop = 0; hop < 8; hop++) {
    const std = STD[path];
    if (std !== undefined) return std;
    const m = FD.exec(path);
    if (m) return Number(m[1]);
    try {
      path = resolve(dirname(path), readlinkSync(path));
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** A symlink the kernel's protected_symlinks would follow in a sticky directory: ours, or its directory owner's. */
function trustedLink(file: string, linkUid: number): boolean {
  if (linkUid === process.geteuid?.()) return true;
  try {
    return statSync(dirname(file)).uid === linkUid;
  } catch {
    return false;
  }
}

/**
 * Writes all of `text` to `fd`, waiting while a pipe opened without blocking is full (EAGAIN): a FIFO is opened
 * so (openOutput), and writeFileSync gives up on the first EAGAIN.
 */
function writeAll(fd: number, text: string): void {
  const bytes = Buffer.from(text);
  for (let at = 0; at < bytes.length;) {
    try {
      at += writeSync(fd, bytes, at);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      sleepSync(5);
    }
  }
}

function ignoreErrors(f: () => void): void {
  try {
    f();
  } catch {
    // see the caller
  }
}

/** `jtm report`: the data, and the HTML file written when asked for one. */
export async function writeReport(
  open: () => Promise<JtmContext>,
  opts: ReportOptions,
): Promise<{ data: ReportData; file?: string }> {
  // Checked before connecting, as every other command's -p: the pool name reaches Redis key patterns.
  if (opts.filter.pool !== undefined) validatePoolName(opts.filter.pool);
  if (opts.filter.workflow !== undefined) validateWorkflowFilter(opts.filter.workflow);
  const file = opts.output === undefined ? undefined : resolve(opts.output);
  const out = file === undefined ? undefined : openOutput(file);
  let data: ReportData;
  try {
    data = await buildReport(
      await open(),
      opts.filter,
      opts.progress ? progressLines(opts.progress) : undefined,
    );
  } catch (err) {
    out?.discard();
    throw err;
  }
  if (out === undefined || file === undefined) return { data };
  try {
    writeAll(out.fd, reportHtml(data).slice(HTML_START.length));
    out.commit();
  } catch (err) {
    out.discard();
    // `-o /dev/stdout | head`: the reader had what it wanted and left; quietly done, as every other command's
    // output into a closed pipe (adversary 15 P11).
    if ((err as NodeJS.ErrnoException).code === 'EPIPE') return { data, file };
    throw new InvalidInputError(`cannot write ${file}: ${toError(err).message}`);
  }
  return { data, file };
}
