// A run fenced before its command started (adversary 26 F3): behind a slow link to Redis at the moment of the claim,
// the claim's answer came after the worker's lease had lapsed, and the run was given back "task not started, so
// that a takeover cannot overlap it" — counted as a lease loss. With no retries left the next such give-back ended
// the task lostconnection, though its command had never run; siblings in the same outage were charged nothing
// (their fence saw Redis's silence). Nothing ran: such give-backs are counted apart (`unstarted_givebacks`).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { runJtm, startJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext, waitFinalRecord } from '../helpers/context.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { wiredProxy } from '../helpers/tcp-proxy.js';

/**
 * A proxy to `port` that, while `holding`, holds every answer of a connection for `holdMs` from the moment a
 * worker's claim (the one script call naming `marker`) goes through it: the claim's answer, and the heartbeat's
 * behind it on the same connection, come after the worker's lease has lapsed. Redis itself applies everything at
 * once (the worker's alive key is renewed there: no takeover). `claims`: how many claims were held.
 */
async function claimHolder(port: number, marker: string, holdMs: number) {
  const state = { holding: true, claims: 0 };
  const proxy = await wiredProxy(port, (client, toRedis) => {
    const server = toRedis();
    let heldUntil = 0;
    const queue: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    const flush = (): void => {
      timer = undefined;
      const wait = heldUntil - Date.now();
      if (wait > 0) {
        timer = setTimeout(flush, wait);
        return;
      }
      for (const chunk of queue.splice(0)) if (client.writable) client.write(chunk);
    };
    client.on('data', chunk => {
      if (state.holding && chunk.includes(marker) && /eval/i.test(chunk.toString('latin1'))) {
        state.claims++;
        heldUntil = Date.now() + holdMs;
      }
      server.write(chunk);
    });
    server.on('data', chunk => {
      queue.push(chunk);
      timer ??= setTimeout(flush, 0);
    });
  });
  return {
    url: proxy.url,
    state,
    close: proxy.close,
  };
}

const NOT_STARTED = /task not started, so that a takeover cannot overlap it/;

describe('a run fenced before its command started', () => {
  it('is given back uncounted, past JTM_TASK_RETRIES + 1 times, and the task runs once the link is healthy', async () => {
    // Retries 0: one lease loss is allowed, the second ended the task lostconnection (before the fix).
    const direct = testEnv({ JTM_TASK_RETRIES: '0' });
    // Lease 1.5 s (500 ms × 3): a claim answered 3 s late is past it. The submit key base: only start-task names it.
    const proxy = await claimHolder(Number(new URL(direct['REDIS_URL']!).port), ':submit:', 3000);
    proxy.state.holding = false;
    const worker = startJtm(['worker', '-p', 'unstarted', '--slots', '1'], {
      ...direct,
      REDIS_URL: proxy.url,
    });
    const ctx = await openTestContext(direct);
    try {
      await waitWorkers(direct, 'unstarted');
      proxy.state.holding = true;
      const marker = join(direct['JTM_LOG_DIR']!, 'marker');
      const [id] = taskIds(
        (await runJtm(['submit', '-p', 'unstarted', '-cmd', `echo S >> ${marker}`], direct)).stdout,
      );
      // Three give-backs before the start (more than JTM_TASK_RETRIES + 1), or the task's end (before the fix).
      const notStarted = async (): Promise<number> =>
        (await ctx.tasks.events(id!)).filter(e => NOT_STARTED.test(e.reason ?? '')).length;
      await waitFor(
        async () => (await notStarted()) >= 3 || ((await ctx.tasks.get(id!))?.status ?? 0) < 0,
        'three give-backs before the start',
        60_000,
      );
      proxy.state.holding = false;
      const rec = await waitFinalRecord(ctx, id!, 60_000);
      const reasons = (await ctx.tasks.events(id!)).map(e => e.reason).join('\n');
      expect(
        [rec.status_name, rec.losses ?? 0, rec.lease_losses ?? 0, rec.redis_silences ?? 0],
        `${rec.reason}\n${reasons}\n${worker.output().slice(-3000)}`,
      ).toEqual(['success', 0, 0, 0]);
      expect(proxy.state.claims).toBeGreaterThanOrEqual(3);
      const givenBack = await notStarted();
      expect(givenBack).toBeGreaterThanOrEqual(3);
      expect(rec.unstarted_givebacks).toBe(givenBack);
      expect(reasons).toMatch(
        /task not started, so that a takeover cannot overlap it \(.*nothing ran: not counted/,
      );
      // The command ran once: at the start that came once the link was healthy.
      const starts = existsSync(marker)
        ? readFileSync(marker, 'utf8')
            .split('\n')
            .filter(l => l === 'S')
        : [];
      expect(starts).toHaveLength(1);
    } finally {
      await closeContext(ctx);
      await worker.stop();
      proxy.close();
    }
  }, 180_000);
});
