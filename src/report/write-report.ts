import { closeSync, fstatSync, openSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { resolve } from 'node:path';

import type { JtmContext } from '../context.js';
import { InvalidInputError, toError } from '../errors.js';
import { validatePoolName } from '../pool-spec.js';
import type { ReportData, ReportFilter } from './analyse.js';
import { buildReport } from './build-report.js';
import type { ReadProgress } from './read-tasks.js';
import { HTML_START, reportHtml } from './report-html.js';

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

/**
 * The output file, opened before any record is read: a report of 100,000 tasks takes ~20 s to read, and a path
 * that cannot be written (a directory, a missing folder, `/dev/full`) must not be found only after that. The
 * document's first bytes are written at once so that a device or disk without room fails now too.
 */
function openOutput(file: string): number {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'w');
    writeSync(fd, HTML_START);
    return fd;
  } catch (err) {
    if (fd !== undefined) discardOutput(fd, file);
    throw new InvalidInputError(`cannot write ${file}: ${toError(err).message}`);
  }
}

/** Closes an output left unfinished; a regular file is removed rather than left holding a stub. */
function discardOutput(fd: number, file: string): void {
  try {
    const regular = fstatSync(fd).isFile();
    closeSync(fd);
    if (regular) unlinkSync(file);
  } catch {
    // best effort: the error that got us here is the one to report
  }
}

/** `jtm report`: the data, and the HTML file written when asked for one. */
export async function writeReport(
  open: () => Promise<JtmContext>,
  opts: ReportOptions,
): Promise<{ data: ReportData; file?: string }> {
  // Checked before connecting, as every other command's -p: the pool name reaches Redis key patterns.
  if (opts.filter.pool !== undefined) validatePoolName(opts.filter.pool);
  const file = opts.output === undefined ? undefined : resolve(opts.output);
  const fd = file === undefined ? undefined : openOutput(file);
  let data: ReportData;
  try {
    data = await buildReport(
      await open(),
      opts.filter,
      opts.progress ? progressLines(opts.progress) : undefined,
    );
  } catch (err) {
    if (fd !== undefined && file !== undefined) discardOutput(fd, file);
    throw err;
  }
  if (fd === undefined || file === undefined) return { data };
  try {
    // writeFileSync on a descriptor writes all of it from the current position (after HTML_START).
    writeFileSync(fd, reportHtml(data).slice(HTML_START.length));
    closeSync(fd);
  } catch (err) {
    discardOutput(fd, file);
    throw new InvalidInputError(`cannot write ${file}: ${toError(err).message}`);
  }
  return { data, file };
}
