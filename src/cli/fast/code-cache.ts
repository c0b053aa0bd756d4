/**
 * Loads a CommonJS bundle with a V8 code cache (Node 20 has no compile cache for ES modules: Node 22's
 * module.enableCompileCache is what this stands in for). A Slurm allocation's worker compiles ~1 MB of
 * bundled JavaScript (BullMQ, ioredis, JTM) at every start: about a quarter of its CPU before the first task,
 * measured by benchmark 7's worker cold start. With the cache, V8 deserialises the functions compiled by an
 * earlier run instead of parsing and compiling them again.
 *
 * Only node: built-ins here: bin/run.js imports this before any bundle.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, constants, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** What the cache did for this load: used, absent (first run, or a new build), or refused by V8. */
export type CodeCacheState = 'accepted' | 'none' | 'rejected';

export interface CachedModule {
  exports: Record<string, unknown>;
  cache: CodeCacheState;
  /**
   * Writes the functions compiled so far (start-up included) to the cache file, once, unless the cache in use
   * was accepted. Best effort: false when it did not write (nothing to do, or a read-only installation).
   */
  save: () => boolean;
}

/**
 * The cache file of `bundle` for this V8 (another Node version's cache would be refused, and two versions
 * sharing one file would keep replacing each other's), per `use`: each holds what its own runs compiled.
 */
export function codeCachePath(bundle: string, use = 'main'): string {
  return `${bundle}.${use}.${process.versions.v8}.${process.arch}.cache`;
}

/** Compiles the CommonJS file `bundle` (not run yet), with V8's code cache from `cacheFile` when valid. */
export function compileWithCodeCache(
  bundle: string,
  cacheFile: string,
): { script: Script; cache: CodeCacheState } {
  const source = readFileSync(bundle, 'utf8');
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  // The same wrapper as Node's CommonJS loader, so that the bundle sees the usual module variables.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  return { script, cache: !cachedData ? 'none' : script.cachedDataRejected ? 'rejected' : 'accepted' };
}

/** Runs the CommonJS file `bundle` as require() would, with V8's code cache from `cacheFile` when valid. */
export function loadWithCodeCache(bundle: string, cacheFile = codeCachePath(bundle)): CachedModule {
  const { script, cache } = compileWithCodeCache(bundle, cacheFile);
  const module = { exports: {} as Record<string, unknown> };
  const wrapper = script.runInThisContext() as (...args: unknown[]) => void;
  wrapper(module.exports, createRequire(bundle), module, bundle, dirname(bundle));
  let saved = false;
  const save = (): boolean => {
    // Once per process; a read-only installation is not worth the cost of serialising.
    if (cache === 'accepted' || saved || !writable(dirname(cacheFile))) return false;
    saved = true;
    // Written beside it and renamed over it: workers starting together on a node never read half a file.
    const tmp = `${cacheFile}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      writeFileSync(tmp, script.createCachedData());
      renameSync(tmp, cacheFile);
      return true;
    } catch {
      rmSync(tmp, { force: true });
      return false;
    }
  };
  return { exports: module.exports, cache, save };
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
