#!/usr/bin/env node
// `npm run bench [-- --quick] [-- --only=1,3]`: runs the benchmarks, each against a baseline measured in
// the same run (the machine is shared and noisy: ratios, medians), and rewrites docs/benchmarks.md.
// With --only, a benchmark that writes its own section (8, 9) replaces just that section of the existing doc,
// so that a partial run does not throw away the other benchmarks' figures; a partial run of the others prints
// its table and leaves the doc as it is (or writes --out).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { startLocalRedis } from '../lib/local-redis.mjs';
import { renderDoc, sectionBlock } from './lib/doc.mjs';
import { ROOT } from './lib/jtm.mjs';
import { describeMachine } from './lib/machine.mjs';

const DEFAULT_OUT = join(ROOT, 'docs', 'benchmarks.md');

const BENCHMARKS = [
  { id: '1', name: 'throughput', module: './throughput.mjs' },
  { id: '2', name: 'submit → start latency', module: './latency.mjs' },
  { id: '3', name: 'CLI start-up', module: './startup.mjs' },
  { id: '4', name: 'scale: 50 pools', module: './scale.mjs' },
  { id: '5', name: 'sampling overhead', module: './sampling.mjs' },
  { id: '6', name: 'manager sweep', module: './sweep.mjs' },
  { id: '7', name: 'Slurm dynamic pool', module: './slurm.mjs' },
  { id: '8', name: 'Redis cost per task', module: './redis-cost.mjs' },
  { id: '9', name: 'Redis Cluster shards', module: './shards.mjs' },
];

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    out: { type: 'string', default: DEFAULT_OUT },
  },
});
const only = values.only ? new Set(values.only.split(',')) : undefined;
const log = msg => process.stderr.write(`${msg}\n`);

const started = Date.now();
const rows = [];
for (const b of BENCHMARKS) {
  if (only && !only.has(b.id)) continue;
  log(`[bench ${b.id}] ${b.name}`);
  // A fresh private server per benchmark: memory figures and key counts start from nothing.
  const redis = await startLocalRedis();
  const t0 = Date.now();
  try {
    const { run } = await import(b.module);
    const result = await run({ quick: values.quick, redisUrl: redis.url, log });
    rows.push(...result);
  } catch (err) {
    log(`[bench ${b.id}] failed: ${err.stack ?? err}`);
    rows.push({ id: b.id, figure: `${b.id}. ${b.name}`, failed: String(err.message ?? err).split('\n')[0] });
  } finally {
    await redis.stop();
  }
  log(`[bench ${b.id}] ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}
const machine = describeMachine(ROOT);
const elapsedS = (Date.now() - started) / 1000;
// Formatted as prettier would, so that `prettier --check .` stays clean after a run.
const { format } = await import('prettier');
const sections = rows.filter(r => r.section).map(r => r.section);
const spliceOnly = only && existsSync(values.out) && [...only].every(id => sections.some(s => s.id === id));
// A partial run of table benchmarks would replace the whole doc with its few rows (one date and commit for
// the table): the doc is left alone then, unless --out names where to write.
const keepDoc = only && !spliceOnly && values.out === DEFAULT_OUT;
if (keepDoc) {
  log(`not written: ${values.out} (a partial run: run all benchmarks to rewrite it, or give --out FILE)`);
} else {
  const doc = spliceOnly
    ? spliceSections(readFileSync(values.out, 'utf8'), sections)
    : renderDoc({ rows, machine, quick: values.quick, elapsedS, sections });
  writeFileSync(values.out, await format(doc, { filepath: values.out }));
  log(`wrote ${values.out} in ${elapsedS.toFixed(0)} s`);
}
process.stdout.write(renderDoc({ rows, machine, quick: values.quick, elapsedS, tableOnly: true }));

/** Replaces (or appends before the notes) each `<!-- bench-N -->…<!-- /bench-N -->` block of `doc`. */
function spliceSections(doc, sections) {
  let out = doc;
  for (const { id, markdown } of sections) {
    const block = sectionBlock(id, markdown);
    const re = new RegExp(`<!-- bench-${id} -->[\\s\\S]*?<!-- /bench-${id} -->\\n?`);
    if (re.test(out)) out = out.replace(re, () => block);
    else {
      const at = out.indexOf('## How each figure is measured');
      out = at < 0 ? `${out}\n${block}` : `${out.slice(0, at)}${block}\n${out.slice(at)}`;
    }
  }
  return out;
}
