// Viewers of a task's live output that read slowly (a slow tunnel, a laptop asleep with the tab open) made the
// dashboard hold the task's whole output for each of them: 20 of them on a task printing 600 MB grew it by
// 730 MB (adversarial test 4). Now nothing more is read for a viewer until what was written to it has gone.
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { BackgroundProcess } from '../helpers/cli.js';
import { useTestContext } from '../helpers/context.js';
import { startDashboard } from '../helpers/dashboard.js';
import { testEnv } from '../helpers/env.js';
import { submitOne } from '../helpers/submit.js';

const rssMb = (pid: number): number =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))?.[1]) / 1024;

describe('live output to viewers that do not read', () => {
  const env = testEnv();
  const ctx = useTestContext(env);
  let dashboard: BackgroundProcess;
  let url: URL;
  const viewers: Socket[] = [];

  beforeAll(async () => {
    const started = await startDashboard(env);
    dashboard = started.proc;
    url = new URL(started.url);
  });
  afterAll(async () => {
    for (const v of viewers) v.destroy();
    await dashboard?.stop();
  });

  it('the dashboard does not buffer the whole output for each of them', async () => {
    // A waiting task (no worker: it stays pending, so the stream stays open) with 24 MB of output.
    const id = await submitOne(env, ['-cmd', 'true', '-p', 'slowview']);
    const chunk = 'x'.repeat(64 * 1024);
    const pipeline = ctx().redis.pipeline();
    for (let i = 0; i < 384; i++) pipeline.xadd(ctx().keys.taskOutput(id), '*', 'data', chunk);
    await pipeline.exec();
    const before = rssMb(dashboard.child.pid!);
    for (let i = 0; i < 6; i++) {
      const s = connect(Number(url.port), url.hostname);
      s.write(
        `GET /api/tasks/${id}/output/stream HTTP/1.1\r\nHost: ${url.host}\r\nConnection: keep-alive\r\n\r\n`,
      );
      s.pause(); // never reads: the kernel's buffers fill, then the server's
      viewers.push(s);
    }
    await new Promise(r => setTimeout(r, 4000));
    const grown = rssMb(dashboard.child.pid!) - before;
    // Before: 114–162 MB (the tail read 1,000 entries, the follow read all); now ≈ 7 MB.
    expect(grown).toBeLessThan(50);
  }, 30_000);
});
