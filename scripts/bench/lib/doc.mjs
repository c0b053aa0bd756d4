// Renders docs/benchmarks.md: the measured table, the machine, and the hand-written analysis
// (scripts/bench/notes.md), so that a re-run refreshes the numbers without losing the explanations.
import { readFileSync } from 'node:fs';

import { fmt } from './stats.mjs';

function cell(row) {
  if (row.failed) return [row.figure, `failed: ${row.failed}`, '—', '—', '—', '—'];
  if (row.notMeasured)
    return [row.figure, `not measured: ${row.notMeasured}`, '—', '—', row.target ?? '—', '—'];
  const verdict = row.pass === undefined ? '' : row.pass ? 'met' : '**missed**';
  const baseline =
    row.baseline === undefined
      ? '—'
      : `${row.baselineName}: ${fmt(row.baseline, row.baselineUnit ?? row.unit)}`;
  const ratio = row.ratio === undefined ? '—' : `${fmt(row.ratio)} ×`;
  const value = `${fmt(row.value, row.unit)}${row.note ? ` (${row.note})` : ''}`;
  return [row.figure, value, baseline, ratio, row.target ?? '—', verdict];
}

/** A benchmark's own section, between markers so that a partial run (--only) can replace just it. */
export function sectionBlock(id, markdown) {
  return `<!-- bench-${id} -->\n\n${markdown.trim()}\n\n<!-- /bench-${id} -->\n`;
}

export function renderDoc({ rows, machine, quick, elapsedS, sections = [], tableOnly = false }) {
  const header = ['figure', 'JTM', 'baseline (same run)', 'ratio', 'target', ''];
  const lines = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows)
    lines.push(
      `| ${cell(r)
        .map(c => String(c).replace(/\|/g, '\\|'))
        .join(' | ')} |`,
    );
  const table = `${lines.join('\n')}\n`;
  if (tableOnly) return table;
  const notes = readFileSync(new URL('../notes.md', import.meta.url), 'utf8');
  return `# JTM benchmarks

Written by \`npm run bench${quick ? ' -- --quick' : ''}\` (scripts/bench/); do not edit the table by hand, edit
scripts/bench/notes.md for the text below it. Every figure is compared with a baseline measured in the same run on
the same machine, medians of several runs: the machines are shared, so absolute numbers move, ratios much less.

- **Mode**: ${quick ? 'quick (smaller sizes, fewer runs)' : 'full'}, ${fmt(elapsedS)} s in all
- **Date**: ${machine.date}
- **Commit**: ${machine.commit}
- **Machine**: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGB} GB memory, load average ${machine.load} at the end
- **Software**: Node ${machine.node}, redis-server ${machine.redis} (private instance per benchmark, no persistence)

${table}
${sections.map(s => `${sectionBlock(s.id, s.markdown)}\n`).join('')}${notes}`;
}
