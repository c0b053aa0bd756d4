import { statSync } from 'node:fs';
import { delimiter, join } from 'node:path';

import { describe, it, type TestFunction } from 'vitest';

import { openCgroupHost } from '../../src/worker/cgroup.js';
import { madeDirs, removeTempDir } from './env.js';

/** Whether what a suite needs (chromium, root, Slurm) is here, and if not, why (one line, with the fix). */
export interface Requirement {
  available: boolean;
  reason?: string;
}

/** Marks a skipped suite's title; scripts/test.sh prints one `skipped: <file>: <reason>` line per suite. */
export const SKIP_MARK = ' [skipped: ';

/**
 * A regular file with an execute bit (enough to find a browser or a Slurm command). A PATH directory this user
 * may not search (root's `/root/.cargo/bin` in the PATH of `su user`) is no match: its EACCES failed the whole
 * dashboard test file of a non-root run.
 */
function executable(path: string): boolean {
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    return st !== undefined && st.isFile() && (st.mode & 0o111) !== 0;
  } catch {
    return false;
  }
}

/** First of `names` on PATH. */
export function onPath(...names: string[]): string | undefined {
  for (const dir of (process.env['PATH'] ?? '').split(delimiter)) {
    for (const name of names) {
      if (dir && executable(join(dir, name))) return join(dir, name);
    }
  }
  return undefined;
}

/**
 * Debian's chromium for the browser test: `JTM_TEST_CHROMIUM` (a path; point it at nothing to see the
 * skip), else `chromium` or `chromium-browser` on PATH.
 */
export function findChromium(): Requirement & { path?: string } {
  const wanted = process.env['JTM_TEST_CHROMIUM'];
  const path =
    wanted !== undefined ? (executable(wanted) ? wanted : undefined) : onPath('chromium', 'chromium-browser');
  if (path) return { available: true, path };
  const where = wanted !== undefined ? `at JTM_TEST_CHROMIUM=${wanted}` : 'on PATH';
  return { available: false, reason: `chromium not found ${where} (apt-get install chromium)` };
}

/**
 * `describe` when the requirement is met. Otherwise the suite is skipped — its tests count as skipped and
 * its title carries the reason — except in CI (CI=true, where .ci/run installs everything), where it fails
 * with the reason: CI must run every suite.
 */
export function describeIf(req: Requirement, title: string, body: () => void): void {
  if (req.available) describe(title, body);
  else if (process.env['CI'] === 'true') failInCi(req, title);
  else describe.skip(`${title}${SKIP_MARK}${req.reason ?? 'requirement missing'}]`, listedOnly(body));
}

function failInCi(req: Requirement, title: string): void {
  describe(title, () => {
    it(`cannot run in CI: ${req.reason ?? 'unknown'}`, () => {
      throw new Error(`${title}: ${req.reason ?? 'requirement missing'} — CI must run it`);
    });
  });
}

/**
 * One test that needs what `req` says: `it` when it is met; otherwise skipped with the reason in its title (the
 * closing summary of scripts/test.sh prints one line for it), or, in CI, failing with the reason.
 */
export function itIf(req: Requirement, title: string, fn: TestFunction, timeout?: number): void {
  if (req.available) it(title, fn, timeout);
  else if (process.env['CI'] === 'true')
    it(`${title}: cannot run in CI: ${req.reason ?? 'unknown'}`, () => {
      throw new Error(`${title}: ${req.reason ?? 'requirement missing'} — CI must run it`);
    });
  else it.skip(`${title}${SKIP_MARK}${req.reason ?? 'requirement missing'}]`, fn);
}

/** Root: what changes another user's files (chown), mounts, or makes cgroups. */
export function asRoot(why: string): Requirement {
  return process.getuid?.() === 0
    ? { available: true }
    : { available: false, reason: `needs root (${why}); this run is uid ${process.getuid?.() ?? '?'}` };
}

/**
 * One test that cannot run under `skip` (a reason) by its nature, CI included (a read-only installation cannot be
 * tested as root): skipped with the reason in its title, else run.
 */
export function itUnless(skip: string | undefined, title: string, fn: TestFunction, timeout?: number): void {
  if (skip === undefined) it(title, fn, timeout);
  else it.skip(`${title}${SKIP_MARK}${skip}]`, fn);
}

/** A suite that cannot run under `skip` (a reason) by the machine's nature, CI included: skipped with the reason. */
export function describeUnless(skip: string | undefined, title: string, body: () => void): void {
  if (skip === undefined) describe(title, body);
  else describe.skip(`${title}${SKIP_MARK}${skip}]`, listedOnly(body));
}

/**
 * A skipped suite's body, run to list its tests: the temporary directories it makes are removed as it returns.
 * No hook of a file whose tests are all skipped runs, the cleanup's neither, and every gate left a
 * `jtm-test-<id>-non-root-worker-` directory behind.
 */
function listedOnly(body: () => void): () => void {
  return () => {
    const before = new Set(madeDirs());
    body();
    for (const dir of madeDirs()) if (!before.has(dir)) removeTempDir(dir);
  };
}

/** Whether this machine lets a worker make task cgroups (root with a writable hierarchy, as in CI). */
export function taskCgroups(): Requirement {
  const host = openCgroupHost(`jtm-probe-${process.pid}`);
  if ('reason' in host)
    return { available: false, reason: 'needs task cgroups: root with a writable cgroup hierarchy' };
  host.dispose();
  return { available: true };
}
