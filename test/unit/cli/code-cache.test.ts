import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { compileWithCodeCache, loadWithCodeCache } from '../../../src/cli/fast/code-cache.js';
import { tempDir } from '../../helpers/env.js';
import { itUnless } from '../../helpers/requirements.js';

/** A small CommonJS bundle with functions that run at load and later (what the cache holds). */
function bundle(k = 0): string {
  const file = join(tempDir('jtm-code-cache-'), 'main.cjs');
  writeBundle(file, k);
  return file;
}

function writeBundle(file: string, k: number): void {
  const body = Array.from({ length: 50 }, (_, i) => `function f${i}(x) { return x + ${i}; }`).join('\n');
  const fns = Array.from({ length: 50 }, (_, i) => `f${i}`).join(', ');
  writeFileSync(
    file,
    `${body}\nconst path = require('node:path');\nexports.k = () => ${k};\nexports.sum = x => [${fns}].reduce((a, f) => a + f(x), 0);\nexports.where = path.basename(__filename) + ' in ' + path.basename(__dirname);\n`,
  );
}

/**
 * What a fresh process finds in the cache (the built module: `npm run build`). Within one process V8 reuses
 * a script it compiled already and never looks at the cache, so only another process can tell.
 */
function cacheSeenByNewProcess(file: string, use = 'main'): string {
  const mod = new URL('../../../dist/src/cli/fast/code-cache.js', import.meta.url).href;
  const code = `import { compileWithCodeCache } from ${JSON.stringify(mod)};
process.stdout.write(compileWithCodeCache(${JSON.stringify(file)}, ${JSON.stringify(use)}).cache);`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  if (r.status !== 0) throw new Error(r.stderr);
  return r.stdout;
}

const call = (m: { exports: Record<string, unknown> }, name: string, ...args: number[]): unknown =>
  (m.exports[name] as (...a: number[]) => unknown)(...args);

describe('V8 code cache of the CommonJS fast path (src/cli/fast/code-cache.ts)', () => {
  it('runs the bundle as require() would, writes its cache once, and the next load uses it', () => {
    const file = bundle();
    const first = loadWithCodeCache(file, 'worker');
    expect(first.cache).toBe('none');
    expect(call(first, 'sum', 1)).toBe(50 + 1225);
    expect(first.exports['where']).toMatch(/^main\.cjs in jtm-code-cache-/);
    expect(first.save()).toBe(true);
    expect(first.save()).toBe(false); // once per process
    expect(existsSync(first.cacheFile)).toBe(true);

    expect(cacheSeenByNewProcess(file, 'worker')).toBe('accepted');
    expect(cacheSeenByNewProcess(file, 'submit')).toBe('none');
  });

  it('keeps one cache per use and per V8 version', () => {
    const file = bundle();
    const worker = loadWithCodeCache(file, 'worker').cacheFile;
    expect(loadWithCodeCache(file, 'submit').cacheFile).not.toBe(worker);
    expect(worker).toContain(process.versions.v8);
  });

  it('never runs the cache of another build of the same length (V8 itself only compares lengths)', () => {
    const file = bundle(1);
    const old = loadWithCodeCache(file);
    expect(call(old, 'k')).toBe(1);
    expect(old.save()).toBe(true);
    writeBundle(file, 2); // same length, other code
    expect(cacheSeenByNewProcess(file)).toBe('none');
    expect(call(loadWithCodeCache(file), 'k')).toBe(2);
  });

  it('runs without the cache when V8 refuses it (a damaged file), then replaces it', () => {
    const file = bundle(3);
    const first = loadWithCodeCache(file);
    writeFileSync(first.cacheFile, Buffer.alloc(4096, 7));
    expect(cacheSeenByNewProcess(file)).toBe('rejected');
    const mod = new URL('../../../dist/src/cli/fast/code-cache.js', import.meta.url).href;
    // A new process that runs the bundle with the damaged cache, then saves a good one.
    const code = `import { loadWithCodeCache } from ${JSON.stringify(mod)};
const m = loadWithCodeCache(${JSON.stringify(file)});
process.stdout.write(m.cache + ' ' + m.exports.sum(0) + ' ' + m.save());`;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
    expect(r.stdout).toBe('rejected 1225 true');
    expect(cacheSeenByNewProcess(file)).toBe('accepted');
  });

  itUnless(
    process.getuid?.() === 0 ? 'root may write a read-only directory' : undefined,
    'does not write into a read-only installation',
    () => {
      const file = bundle();
      const dir = join(file, '..');
      chmodSync(dir, 0o555);
      try {
        expect(loadWithCodeCache(file).save()).toBe(false);
        expect(readdirSync(dir)).toEqual(['main.cjs']);
      } finally {
        chmodSync(dir, 0o755);
      }
    },
  );

  it('ignores what is not a regular file at the cache path (a FIFO hung every command, /dev/zero filled memory)', () => {
    const file = bundle(7);
    const fifo = compileWithCodeCache(file, 'fifo').cacheFile;
    expect(spawnSync('mkfifo', [fifo]).status).toBe(0);
    expect(cacheSeenByNewProcess(file, 'fifo')).toBe('none');
    const link = compileWithCodeCache(file, 'zero').cacheFile;
    symlinkSync('/dev/zero', link);
    expect(cacheSeenByNewProcess(file, 'zero')).toBe('none');
  });
});
