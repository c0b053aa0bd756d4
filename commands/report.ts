import { Flags } from '@oclif/core';

import { BaseCommand } from '../src/cli/base-command.js';
import { sinceOf, type ReportData } from '../src/report/analyse.js';
import { writeReport } from '../src/report/write-report.js';

export default class Report extends BaseCommand<typeof Report> {
  static override description = `Writes one self-contained HTML file (charts included, no network needed): tasks by status, wall time and queue wait, attempts, failures with their reasons; per Cromwell call (from -jid cromwell_<workflow>_<call>) or per command: CPU efficiency (CPU time / (wall × CPUs)), peak memory against the pool's request with a right-sizing suggestion; a timeline with one row per worker slot and one bar per task coloured by status; CPU and memory over time of the tasks that used the most. Reads task records and samples from Redis only (works from any host); progress goes to stderr. With --json, prints the same data on stdout (and writes the HTML only if -o is given). Exit codes: 0 written; 1 invalid flags or file not writable; 255 Redis unreachable.`;
  static override examples = [
    '<%= config.bin %> <%= command.id %>',
    '<%= config.bin %> <%= command.id %> -p genomes --since 2h -o run.html',
    '<%= config.bin %> <%= command.id %> --workflow 8a3f2c1d --json > run.json',
  ];
  static override flags = {
    pool: Flags.string({ char: 'p', description: 'only the tasks of this pool' }),
    workflow: Flags.string({
      description:
        'only the tasks of this Cromwell workflow, sub-workflows included (its id, or the first 8 characters: every workflow that starts so)',
    }),
    since: Flags.string({
      description:
        'only tasks running or ended within this long (2h, 30m, 1d, hh:mm:ss; not reaching before 1970)',
    }),
    output: Flags.string({
      char: 'o',
      description: 'HTML file to write (default jtm-report.html; with --json, none unless given)',
    }),
  };
  static override summary = 'Write a run report (HTML with charts, or --json).';

  async run(): Promise<ReportData> {
    const { pool, workflow, since, output } = this.flags;
    const sinceMs = since === undefined ? undefined : sinceOf(since);
    const json = this.jsonEnabled();
    const { data, file } = await writeReport(() => this.context(), {
      filter: {
        ...(pool !== undefined ? { pool } : {}),
        ...(workflow !== undefined ? { workflow } : {}),
        ...(sinceMs !== undefined ? { since: sinceMs } : {}),
      },
      ...(output !== undefined || !json ? { output: output ?? 'jtm-report.html' } : {}),
      // Plain progress lines for the person waiting ("report: N/M task records read"; docs/report.md).
      progress: line => process.stderr.write(line),
    });
    if (!json && file) this.log(file);
    return data;
  }
}
