/**
 * Loads a CommonJS bundle with a V8 code cache (Node 20 has no compile cache for ES modules: Node 22's
 * module.enableCompileCache is what this stands in for). A Slurm allocation's worker compiles ~1 MB of
 * bundled JavaScript (BullMQ, ioredis, JTM) at every start: about a quarter of its CPU before the first task,
 * measured by benchmark 7's worker cold start. With the cache, V8 deserialises the functions compiled by an
 * earlier run instead of parsing and compiling them again.
 *
 * The cache is compiled code, as trusted as the bundle: it lives beside it, in the installation, written only
 * where the installation is writable (whoever could replace the cache could replace the bundle).
 *
 * Only node: built-ins here: bin/run.js imports this before any bundle.
 */
import { createHash, randomBytes } from 'node:crypto';
import { accessSync, constants, lstatSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import { Script } from 'node:vm';

/** What the cache did for this load: used, absent (first run, or a new build), or refused by V8. */
export type CodeCacheState = 'accepted' | 'none' | 'rejected';

export interface CachedModule {
  exports: Record<string, unknown>;
  cache: CodeCacheState;
  /** Where the cache of this bundle and use is (or would be). */
  cacheFile: string;
  /**
   * Writes the functions compiled so far (start-up included) to the cache file, once, unless the cache in use
   * was accepted. Best effort: false when it did not write (nothing to do, or a read-only installation).
   */
  save: () => boolean;
}

/**
 * The cache file of `bundle` (whose text is `source`) for this V8, per `use` (each command's runs compile their
 * own functions). V8 checks a cache only against the source's length, not its text: a cache of another build
 * of the same length would be accepted and run the old code. So the name carries a hash of the text (≈ 2 ms for
 * the 1.5 MB bundle) and the V8 version (another Node's cache would be refused, and two versions sharing one
 * file would keep replacing each other's).
 */
export function codeCachePath(bundle: string, source: string, use: string): string {
  const id = createHash('sha1').update(source).digest('hex').slice(0, 16);
  return `${bundle}.${use}.${id}.${process.versions.v8}-${process.arch}.cache`;
}

/** Larger than any cache of the bundle (about 0.5 MB each): a file beyond it is not one. */
const MAX_CACHE_BYTES = 64 * 1024 * 1024;

/** Compiles the CommonJS file `bundle` (not run yet), with V8's code cache for `use` when there is one. */
export function compileWithCodeCache(
  bundle: string,
  use = 'main',
): { script: Script; cache: CodeCacheState; cacheFile: string } {
  const source = readFileSync(bundle, 'utf8');
  const cacheFile = codeCachePath(bundle, source, use);
  let cachedData: Buffer | undefined;
  try {
    // A regular file of a plausible size only: a FIFO there made every command hang, a link to /dev/zero read
    // until memory ran out (anyone who can write the installation can put one there).
    const st = lstatSync(cacheFile);
    if (st.isFile() && st.size <= MAX_CACHE_BYTES) cachedData = readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  // The same wrapper as Node's CommonJS loader, so that the bundle sees the usual module variables.
  const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  const cache = !cachedData ? 'none' : script.cachedDataRejected ? 'rejected' : 'accepted';
  return { script, cache, cacheFile };
}

/** Runs the CommonJS file `bundle` as require() would, with V8's code cache for `use` when valid. */
export function loadWithCodeCache(bundle: string, use = 'main'): CachedModule {
  const { script, cache, cacheFile } = compileWithCodeCache(bundle, use);
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
  return { exports: module.exports, cache, cacheFile, save };
}

function writable(dir: string): boolean {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}
