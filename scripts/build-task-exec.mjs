// Builds the task wrapper for simple commands (src/worker/task-exec.c, see there) next to the two places the
// worker's code runs from: dist/src/worker/ (tsc) and dist/fast/ (the bundle). Static where the C library
// allows it (it then runs on any node of the same architecture), else dynamic. Without a C compiler nothing is
// built and every task keeps the bash preamble (task-run.ts checks that the binary exists and runs).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const source = `${root}src/worker/task-exec.c`;
const dirs = [`${root}dist/src/worker`, `${root}dist/fast`];
const name = 'jtm-task-exec';
for (const d of dirs) rmSync(`${d}/${name}`, { force: true });

const cc = process.env['CC'] || 'cc';
const out = `${dirs[0]}/${name}`;
mkdirSync(dirs[0], { recursive: true });
const flags = ['-O2', '-Wall', '-Wextra', '-o', out, source];
let built = false;
for (const extra of [['-static'], []]) {
  const r = spawnSync(cc, [...extra, ...flags], { stdio: ['ignore', 'ignore', 'pipe'], encoding: 'utf8' });
  if (r.status === 0 && existsSync(out)) {
    built = true;
    break;
  }
  if (r.error) break; // no compiler
}
if (built) {
  for (const d of dirs.slice(1)) {
    mkdirSync(d, { recursive: true });
    copyFileSync(out, `${d}/${name}`);
  }
  console.log(`${name}: built`);
} else {
  console.log(`${name}: not built (no working C compiler '${cc}'): tasks use the bash preamble`);
}
