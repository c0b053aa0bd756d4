import { afterAll, beforeAll } from 'vitest';

import { closePollers } from './cli.js';
import { madeDirs, removeTempDirs } from './env.js';
import { newHandles, openHandles, strayProcesses } from './leaks.js';

// A setup file, run before each test file. Its afterAll is registered first, so it runs after the test
// file's own (vitest runs after-hooks as a stack), once the file's workers and servers are stopped: it
// checks that the file left no process and no socket behind (killing the processes), then removes the
// file's temporary directories (test/helpers/env.ts tempDir). A leak fails the file, naming what was left.
let before = new Map<string, number>();
beforeAll(() => {
  before = openHandles();
});

/** Polls `probe` until it finds nothing or `graceMs` has passed (what was stopped may take a moment to go). */
async function settle<T>(probe: () => T[], graceMs: number): Promise<T[]> {
  const deadline = Date.now() + graceMs;
  for (;;) {
    const left = probe();
    if (left.length === 0 || Date.now() > deadline) return left;
    await new Promise(r => setTimeout(r, 100));
  }
}

afterAll(async () => {
  await closePollers();
  const dirs = madeDirs();
  const problems: string[] = [];
  const stray = await settle(() => strayProcesses(dirs), 10_000);
  for (const p of stray) {
    try {
      process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  if (stray.length > 0)
    problems.push(`processes left running (killed): ${stray.map(p => `${p.pid} ${p.command}`).join('; ')}`);
  const handles = await settle(() => newHandles(before), 5_000);
  if (handles.length > 0) problems.push(`handles left open: ${handles.join(', ')}`);
  removeTempDirs();
  if (problems.length > 0) throw new Error(`the test file left things behind: ${problems.join(' | ')}`);
});
