// Bundles the fast path of bin/run.js (src/cli/fast/main.ts) with its dependencies into dist/fast/: a cold
// `jtm isalive` then resolves and reads a few files instead of ~150 (ioredis alone is 55). Code
// splitting keeps what only some commands need (bullmq, for submit and kill) in chunks loaded on demand.
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/fast`;
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/cli/fast/main.ts'],
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // pino is loaded lazily through createRequire (src/logger.ts), oclif only on the slow path; the
  // native msgpackr-extract is optional for msgpackr and resolved at run time.
  external: ['pino', 'pino-pretty', '@oclif/*', 'msgpackr-extract'],
  // CommonJS dependencies (ioredis) call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __jtmCreateRequire } from 'node:module'; const require = __jtmCreateRequire(import.meta.url);",
  },
  sourcemap: 'linked',
  keepNames: true,
  metafile: true,
  logLevel: 'warning',
});
const outputs = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js'));
const kb = outputs.reduce((n, [, o]) => n + o.bytes, 0) / 1024;
console.error(`dist/fast: ${outputs.length} files, ${kb.toFixed(0)} KB`);
