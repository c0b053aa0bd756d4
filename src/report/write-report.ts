import { closeSync, constants, openSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
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
 */
function openOutput(file: string): Output {
  let inPlace = false;
  let fifo = false;
  try {
    const st = statSync(file);
    inPlace = !st.isFile();
    fifo = st.isFIFO();
  } catch {
    // no file there yet: written beside it, as a regular one
  }
  const path = inPlace ? file : join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  let fd: number | undefined;
  // Best effort: the error that got us here is the one to report.
  const discard = (): void => {
    if (fd !== undefined) ignoreErrors(() => closeSync(fd as number));
    if (!inPlace) ignoreErrors(() => unlinkSync(path));
  };
  try {
    // A FIFO without blocking: with nothing reading it, the open answers ENXIO at once (it hung for good).
    fd = fifo ? openSync(path, constants.O_WRONLY | constants.O_NONBLOCK) : openSync(path, 'w');
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
      closeSync(opened);
      if (!inPlace) renameSync(path, file);
    },
    discard,
  };
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
