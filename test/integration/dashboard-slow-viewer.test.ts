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
import { MAX_STREAMS_PER_CLIENT } from '../../src/dashboard/task-live.js';

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

  it('one client holds at most MAX_STREAMS_PER_CLIENT streams at once, every loopback address one client (adversary 35 F8)', async () => {
    // 400 streams from one local user, no credential needed on loopback, drove Redis to 2,400 commands a second.
    const id = await submitOne(env, ['-cmd', 'true', '-p', 'slowview2']);
    // The viewers of the row above are this client's streams too: gone first.
    for (const v of viewers.splice(0)) v.destroy();
    await new Promise(r => setTimeout(r, 500));
    /** A stream opened from `from` (a loopback address of its own): its response's status, and its socket. */
    const openStream = (from: string): Promise<{ status: number; socket: Socket }> =>
      new Promise((resolve, reject) => {
        const socket = connect({ host: '127.0.0.1', port: Number(url.port), localAddress: from });
        viewers.push(socket);
        socket.once('error', reject);
        socket.once('data', (d: Buffer) =>
          resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(d.toString('latin1'))?.[1]), socket }),
        );
        socket.write(`GET /api/tasks/${id}/output/stream HTTP/1.1\r\nHost: ${url.host}\r\n\r\n`);
      });
    const opened = [];
    for (let i = 0; i < MAX_STREAMS_PER_CLIENT + 2; i++) opened.push(await openStream(`127.0.0.${i + 2}`));
    expect(opened.filter(o => o.status === 200)).toHaveLength(MAX_STREAMS_PER_CLIENT);
    expect(opened.slice(-2).map(o => o.status)).toEqual([429, 429]);
    // Closing one lets the next one in.
    opened[0]!.socket.destroy();
    await new Promise(r => setTimeout(r, 300));
    expect((await openStream('127.0.0.1')).status).toBe(200);
  }, 60_000);
});
