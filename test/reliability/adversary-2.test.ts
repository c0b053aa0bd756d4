import { afterAll, describe, expect, it } from 'vitest';

import { runJtm, waitWorkers } from '../helpers/cli.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { context, start, stopTracked } from '../helpers/tracked.js';

/*
 * Defects the second adversarial tester found on cfe1168 (/work/wt/brief/adversary-report.md): D4, D5, D1, D2.
 */
afterAll(stopTracked);

describe('D4: check-worker uses the worker’s own heartbeat, as pools and the manager do', () => {
  it('counts a live worker started with -hb 60s long after the reader’s own window (3 × 500 ms)', async () => {
    const env = testEnv();
    start(['worker', '-p', 'hblong', '-hb', '60s'], env);
    await waitWorkers(env, 'hblong');
    const ctx = await context(env);
    // Past the reader's window (JTM_HEARTBEAT_INTERVAL 500 ms × 3) since the worker's only beat so far.
    await waitFor(async () => {
      const ids = await ctx.redis.zrange(ctx.keys.workers, 0, -1, 'WITHSCORES');
      const last = Number(ids[1] ?? Date.now());
      return Date.now() - last > 2500;
    }, 'the worker’s last beat to be older than the reader’s window');
    const r = await runJtm(['check-worker', '-p', 'hblong'], env);
    expect(r.stdout.trim(), r.stderr).toBe('1');
    expect(r.code).toBe(0);
  });
});
