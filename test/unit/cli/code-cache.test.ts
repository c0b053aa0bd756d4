import { chmodSync, existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { codeCachePath, loadWithCodeCache } from '../../../src/cli/fast/code-cache.js';
import { tempDir } from '../../helpers/env.js';

/** A small CommonJS bundle with functions that run at load and later (what the cache holds). */
function bundle(): string {
  const file = join(tempDir('jtm-code-cache-'), 'main.cjs');
  const body = Array.from({ length: 50 }, (_, i) => `function f${i}(x) { return x + ${i}; }`).join('\n');
  writeFileSync(
    file,
    `${body}\nconst path = require('node:path');\nexports.sum = x => [${Array.from({ length: 50 }, (_, i) => `f${i}`).join(', ')}].reduce((a, f) => a + f(x), 0);\nexports.where = path.basename(__filename) + ' in ' + path.basename(__dirname);\n`,
  );
  return file;
}

describe('V8 code cache of the CommonJS fast path (src/cli/fast/code-cache.ts)', () => {
  it('runs the bundle as require() would, writes its cache once, and the next load uses it', () => {
    const file = bundle();
    const cacheFile = codeCachePath(file, 'worker');
    const first = loadWithCodeCache(file, cacheFile);
    expect(first.cache).toBe('none');
    expect(first.exports['sum']).toBeTypeOf('function');
    expect((first.exports['sum'] as (x: number) => number)(1)).toBe(50 + 1225);
    expect(first.exports['where']).toMatch(/^main\.cjs in jtm-code-cache-/);
    expect(first.save()).toBe(true);
    expect(first.save()).toBe(false); // once per process
    expect(existsSync(cacheFile)).toBe(true);

    const second = loadWithCodeCache(file, cacheFile);
    expect(second.cache).toBe('accepted');
    expect((second.exports['sum'] as (x: number) => number)(2)).toBe(100 + 1225);
    expect(second.save()).toBe(false); // an accepted cache is not rewritten
  });

  it('keeps one cache per use and per V8 version', () => {
    const file = bundle();
    expect(codeCachePath(file, 'submit')).not.toBe(codeCachePath(file, 'worker'));
    expect(codeCachePath(file, 'submit')).toContain(process.versions.v8);
  });

  it('runs without the cache when V8 refuses it (another build, a damaged file), then replaces it', () => {
    const file = bundle();
    const cacheFile = codeCachePath(file);
    writeFileSync(cacheFile, Buffer.alloc(4096, 7));
    const loaded = loadWithCodeCache(file, cacheFile);
    expect(loaded.cache).toBe('rejected');
    expect((loaded.exports['sum'] as (x: number) => number)(0)).toBe(1225);
    expect(loaded.save()).toBe(true);
    expect(loadWithCodeCache(file, cacheFile).cache).toBe('accepted');
  });

  it.skipIf(process.getuid?.() === 0)('does not write into a read-only installation', () => {
    const file = bundle();
    const dir = join(file, '..');
    chmodSync(dir, 0o555);
    try {
      const loaded = loadWithCodeCache(file);
      expect(loaded.save()).toBe(false);
      expect(readdirSync(dir)).toEqual(['main.cjs']);
    } finally {
      chmodSync(dir, 0o755);
    }
  });
});
