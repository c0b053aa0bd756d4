// Bundles the fast path of bin/run.js (src/cli/fast/main.ts) with its dependencies into dist/fast/: a cold
// `jtm isalive` then resolves and reads a few files instead of ~150 (ioredis alone is 55). Code
// splitting keeps what only some commands need (bullmq, for submit, kill and worker; the worker's own
// code) in chunks loaded on demand. The worker forks its pty host from `./pty-host.js` next to the
// module that forks it (src/worker/run-in-pty.ts), so the host is an entry of its own: dist/fast/pty-host.js.
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { build } from 'esbuild';

const root = fileURLToPath(new URL('..', import.meta.url));

/**
 * Parts of BullMQ that JTM never runs, replaced by stubs that throw if ever called: about 700 KB of the
 * 1.6 MB bullmq chunk that submit and every Slurm worker parse at start (its PostgreSQL backend with 270 KB
 * of SQL, the node-redis and Bun clients — JTM hands BullMQ ioredis —, and cron-parser with luxon, for job
 * schedulers JTM does not use). A stub that misses a name BullMQ imports fails this build.
 */
const UNUSED = [
  { filter: /[\\/]bullmq[\\/]dist[\\/]esm[\\/]postgres[\\/]index\.js$/, contents: 'export {};' },
  {
    filter: /[\\/]bullmq[\\/]dist[\\/]esm[\\/]classes[\\/]node-redis-client\.js$/,
    contents: stub('createNodeRedisClient', 'a node-redis client'),
  },
  {
    filter: /[\\/]bullmq[\\/]dist[\\/]esm[\\/]classes[\\/]bun-redis-client\.js$/,
    contents: stub('createBunRedisClient', "Bun's Redis client"),
  },
  {
    filter: /[\\/]cron-parser[\\/]dist[\\/]index\.js$/,
    contents: `export const CronExpressionParser = { parse: ${thrower('cron job schedulers')} };`,
  },
];

function thrower(what) {
  return `() => { throw new Error(${JSON.stringify(`JTM bundle: ${what} left out (scripts/build-fast.mjs)`)}); }`;
}

function stub(name, what) {
  return `export const ${name} = ${thrower(what)};`;
}

const stubbed = new Set();
const leaveOutUnused = {
  name: 'leave-out-unused',
  setup(b) {
    for (const u of UNUSED) {
      b.onLoad({ filter: u.filter }, () => {
        stubbed.add(u);
        return { contents: u.contents, loader: 'js' };
      });
    }
  },
};
const outdir = `${root}dist/fast`;
rmSync(outdir, { recursive: true, force: true });
/** What both builds share: the same sources, stubs, externals and settings. */
const common = {
  absWorkingDir: root,
  bundle: true,
  platform: 'node',
  mainFields: ['module', 'main'],
  target: 'node20',
  // pino is loaded lazily through createRequire (src/logger.ts), oclif only on the slow path; the
  // native msgpackr-extract is optional for msgpackr and resolved at run time, and node-pty (native, loads
  // its binary relative to itself) by the pty host.
  external: ['pino', 'pino-pretty', '@oclif/*', 'msgpackr-extract', 'node-pty'],
  sourcemap: 'linked',
  keepNames: true,
  metafile: true,
  logLevel: 'warning',
  plugins: [leaveOutUnused],
};
// msgpackr would load its native string extractor (msgpackr-extract, found through node-gyp-build's search
// of the file system, then dlopen) at start: ≈ 30 ms of CPU per process here, for unpacking that JTM's
// id-only jobs never need.
const MSGPACKR = { 'process.env.MSGPACKR_NATIVE_ACCELERATION_DISABLED': '"true"' };
const result = await build({
  ...common,
  entryPoints: { main: 'src/cli/fast/main.ts', 'pty-host': 'src/worker/pty-host.ts' },
  outdir,
  splitting: true,
  format: 'esm',
  define: MSGPACKR,
  // CommonJS dependencies (ioredis) call require(); an ES module has none of its own.
  banner: {
    js: "import { createRequire as __jtmCreateRequire } from 'node:module'; const require = __jtmCreateRequire(import.meta.url);",
  },
});
// The same fast path as one CommonJS file: bin/run.js runs the hot commands (the worker, submit, isalive...)
// from it with a V8 code cache (src/cli/fast/code-cache.ts), which Node 20 offers for scripts but not for ES
// modules. The split ES build stays the entry of the other commands (they only parse argv before oclif).
const cjsResult = await build({
  ...common,
  entryPoints: { main: 'src/cli/fast/main.ts' },
  outdir,
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  // import.meta has no value in CommonJS: the bundle's own URL stands in (pty-host.js and pino are found
  // relative to it, as from the ES build in the same folder).
  define: { ...MSGPACKR, 'import.meta.url': '__jtmBundleUrl' },
  banner: { js: "const __jtmBundleUrl = require('node:url').pathToFileURL(__filename).href;" },
});
// A stub that no longer matches (BullMQ moved a file) would silently bring the code back: say so.
const unmatched = UNUSED.filter(u => !stubbed.has(u));
if (unmatched.length > 0) {
  console.error(`build-fast: stubs matched nothing: ${unmatched.map(u => u.filter).join(', ')}`);
  process.exitCode = 1;
}
const outputs = Object.entries(result.metafile.outputs).filter(([f]) => f.endsWith('.js'));
const kb = outputs.reduce((n, [, o]) => n + o.bytes, 0) / 1024;
const cjsKb = cjsResult.metafile.outputs['dist/fast/main.cjs'].bytes / 1024;
console.error(`dist/fast: ${outputs.length} files, ${kb.toFixed(0)} KB; main.cjs ${cjsKb.toFixed(0)} KB`);
