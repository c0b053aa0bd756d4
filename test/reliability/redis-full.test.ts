// A full Redis (maxmemory under noeviction, what docs/reliability.md asks for) refuses every write that may grow
// its data: the worker's beat among them. The worker stopped every running task before its lease could lapse,
// though no other worker could take one over while Redis took no writes (adversary 13 E4: hours of work re-run
// from the start). The lease is kept by PEXPIRE of the alive key, which a full Redis still takes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runJtm, startJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv, waitFor } from '../helpers/env.js';
import { processesMatching } from '../helpers/processes.js';
import { redisCli, startPlainRedis } from './servers.js';

// A script run may write past maxmemory (Redis checks it as a script starts): what follows is refused. In runs
// of 2,000 writes, each too short to hold Redis past a beat (one long run made the beats late, not refused).
const fill = (from: number): string =>
  `for i=${from},${from + 1999} do redis.call('set','filler:'..i,string.rep('x',1000)) end return 1`;

describe('a full Redis (OOM under noeviction)', () => {
  it('running tasks go on and end once, their worker keeps its lease; it warns that Redis is full', async () => {
    const server = await startPlainRedis(['--maxmemory-policy', 'noeviction']);
    const port = String(server.port);
    const env = testEnv({ REDIS_URL: `redis://127.0.0.1:${port}` });
    const worker = startJtm(['worker', '-p', 'full', '--slots', '2'], env);
    const ctx = await openTestContext(env);
    try {
      await waitWorkers(env, 'full');
      // Runs until released: however long filling Redis takes on a loaded machine, it cannot end by itself first.
      const release = join(tempDir('jtm-full-'), 'release');
      const command = `while [ ! -e ${release} ]; do sleep 0.17; done; echo done`;
      const ids = taskIds((await runJtm(['submit', '-p', 'full', '-cmd', command], env)).stdout);
      const running = await waitFor(() => {
        const p = processesMatching(release);
        return p.length > 0 ? p : undefined;
      }, 'the task to run');
      // Full, by a wide margin (just past the limit, a client's buffer shrinking brought Redis back under it and the
      // beats passed: a fresh-clone run failed so): 20 MB of data, then a limit 8 MB below what it uses.
      for (let from = 0; from < 20_000; from += 2000) redisCli(['-p', port, 'EVAL', fill(from), '0']);
      const used = Number(/used_memory:(\d+)/.exec(redisCli(['-p', port, 'INFO', 'memory']))?.[1]);
      redisCli(['-p', port, 'CONFIG', 'SET', 'maxmemory', String(used - 8 * 1024 * 1024)]);
      expect(redisCli(['-p', port, 'SET', 'probe', 'x'])).toMatch(/^OOM/);
      // A beat refused for memory (on a loaded machine the worker's timers may come late: waited for), then three
      // heartbeat TTLs (3 × 500 ms beats each) while every beat is refused.
      await waitFor(
        () => /Redis is full; the lease is kept/.test(worker.output()) || undefined,
        'a refused beat',
      );
      await new Promise(r => setTimeout(r, 5000));
      // Still there (the wrapper's shell may have been forked after the first look: more, never fewer).
      expect(processesMatching(release), worker.output()).toEqual(expect.arrayContaining(running));
      expect(worker.output()).not.toMatch(/stopping the running tasks/);
      redisCli(['-p', port, 'CONFIG', 'SET', 'maxmemory', '0']);
      writeFileSync(release, '');
      const id = ids[0]!;
      const rec = await waitFor(async () => {
        const r = await ctx.tasks.get(id);
        return r?.status === 4 ? r : undefined;
      }, 'the task to end');
      expect(rec.attempts).toBe(1);
      expect((await ctx.tasks.events(id)).map(e => e.reason)).not.toContain(
        'worker lost its lease on Redis: run stopped before a takeover',
      );
    } finally {
      await closeContext(ctx);
      await worker.stop();
      await server.stop();
    }
  });
});
