// Bundles the fast path of bin/run.js (src/cli/fast/main.ts) with its dependencies into dist/fast/: a cold
// `jtm isalive` then resolves and reads a few files instead of ~150 (ioredis alone is 55). Code
// splitting keeps what only some commands need (bullmq, for submit, kill and worker; the worker's own
// code) in chunks loaded on demand. The worker forks its pty host from `./pty-host.js` next to the
// module that forks it (src/worker/run-in-pty.ts), so the host is an entry of its own: dist/fast/pty-host.js.
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));
const outdir = `${root}dist/fast`;
rmSync(outdir, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: { main: 'src/cli/fast/main.ts', 'pty-host': 'src/worker/pty-host.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  mainFields: ['module', 'main'],
  target: 'node20',
  // pino is loaded lazily through createRequire (src/logger.ts), oclif only on the slow path; the
  // native msgpackr-extract is optional for msgpackr and resolved at run time, and node-pty (native, loads
  // its binary relative to itself) by the pty host.
  external: ['pino', 'pino-pretty', '@oclif/*', 'msgpackr-extract', 'node-pty'],
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
