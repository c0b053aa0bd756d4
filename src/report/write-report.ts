import { writeFileSync } from 'node:fs';
import { resolve } from 'node:path';

import type { JtmContext } from '../context.js';
import { InvalidInputError, toError } from '../errors.js';
import type { ReportData, ReportFilter } from './analyse.js';
import { buildReport } from './build-report.js';
import type { ReadProgress } from './read-tasks.js';
import { reportHtml } from './report-html.js';

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

/** `jtm report`: the data, and the HTML file written when asked for one. */
export async function writeReport(
  ctx: JtmContext,
  opts: ReportOptions,
): Promise<{ data: ReportData; file?: string }> {
  const data = await buildReport(ctx, opts.filter, opts.progress ? progressLines(opts.progress) : undefined);
  if (opts.output === undefined) return { data };
  const file = resolve(opts.output);
  try {
    writeFileSync(file, reportHtml(data));
  } catch (err) {
    throw new InvalidInputError(`cannot write ${file}: ${toError(err).message}`);
  }
  return { data, file };
}
