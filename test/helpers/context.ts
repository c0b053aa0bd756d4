import { afterAll, beforeAll } from 'vitest';

import { loadConfig } from '../../src/config.js';
import { closeContext, openContext, type JtmContext } from '../../src/context.js';
import { silentLogger } from '../../src/logger.js';
import type { TaskRecord } from '../../src/store/task-record.js';
import { isFinal } from '../../src/task-status.js';
import { waitFor } from './env.js';

/** An in-process context on the test's prefix, for reading records and driving the API directly. */
export async function openTestContext(env: Record<string, string>): Promise<JtmContext> {
  return openContext(loadConfig(env), silentLogger(), 'worker');
}

/**
 * The suite's in-process context on `env`'s prefix, opened before its tests and closed after them; read it
 * through the returned function inside hooks and tests. Call it before the suite's own hooks: its beforeAll
 * then runs first, and its afterAll last (vitest runs after-hooks as a stack), once the workers the suite
 * started are stopped.
 */
export function useTestContext(env: Record<string, string>): () => JtmContext {
  let ctx: JtmContext | undefined;
  beforeAll(async () => {
    ctx = await openTestContext(env);
  });
  afterAll(async () => {
    if (ctx !== undefined) await closeContext(ctx);
  });
  return () => {
    if (ctx === undefined) throw new Error('the test context is open only in the suite’s hooks and tests');
    return ctx;
  };
}

export { closeContext };

/** The task's record once it is final (success or any failure), read through `ctx`. */
export function waitFinalRecord(ctx: JtmContext, id: number, timeoutMs = 30_000): Promise<TaskRecord> {
  return waitFor(
    async () => {
      const t = await ctx.tasks.get(id);
      return t && isFinal(t.status) ? t : undefined;
    },
    `task ${id} to end`,
    timeoutMs,
  );
}
