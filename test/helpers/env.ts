import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';

import { expect, inject } from 'vitest';

const made = new Set<string>();

/**
 * A fresh directory under the system temp dir, removed after the test file (test/helpers/cleanup.ts, a
 * setup file, calls removeTempDirs once the file's own afterAll hooks have stopped its processes).
 */
export function tempDir(prefix = 'jtm-test-'): string {
  // The test file's name in the directory's name says which file made it, should one ever be left behind.
  const file = basename(expect.getState().testPath ?? '', '.test.ts');
  const dir = mkdtempSync(join(tmpdir(), file ? `${prefix}${file}-` : prefix));
  made.add(dir);
  return dir;
}

/** The directories tempDir made in this test file's process (not yet removed). */
export function madeDirs(): string[] {
  return [...made];
}

/** Removes one directory tempDir made (a skipped suite's: requirements.ts). */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  made.delete(dir);
}

/** Removes every directory tempDir made in this test file's process. */
export function removeTempDirs(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  made.clear();
}

/**
 * Environment of one test: its own key prefix (a hash tag, as in production) and log dir on the
 * shared test Redis, with short heartbeats so that liveness tests finish quickly.
 */
export function testEnv(extra: Record<string, string> = {}): Record<string, string> {
  const id = randomUUID().slice(0, 8);
  return {
    PATH: process.env['PATH'] ?? '/usr/bin:/bin',
    HOME: process.env['HOME'] ?? '/tmp',
    REDIS_URL: inject('redisUrl'),
    JTM_PREFIX: `{t-${id}}`,
    // Not made when the test names its own.
    JTM_LOG_DIR: extra['JTM_LOG_DIR'] ?? tempDir(`jtm-test-${id}-`),
    JTM_HEARTBEAT_INTERVAL: '500ms',
    JTM_MISSED_BEATS: '3',
    JTM_SAMPLE_INTERVAL: '1s',
    JTM_KILL_GRACE: '1s',
    JTM_SWEEP_INTERVAL: '1s',
    JTM_CONNECT_TIMEOUT: '2s',
    JTM_ISALIVE_RETRY: '2s',
    JTM_KILL_RETRY: '2s',
    // Tests of an unreachable Redis check how fast a command fails; the retry has tests of its own.
    JTM_SUBMIT_RETRY: '0s',
    ...extra,
  };
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 20_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline)
      throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise(r => setTimeout(r, everyMs));
  }
}

/** Whether a process exists (signal 0). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
