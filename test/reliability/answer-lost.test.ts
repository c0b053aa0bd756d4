// A script applied by Redis whose answer a connection reset lost: the client sends the command again once
// reconnected (ioredis's autoResendUnfulfilledCommands), and the script runs a second time.
// - A worker's claim (start-task) found the task running on this very worker and counted it lost ("restarted:
//   worker … was lost", in the same millisecond as its start): a network fault spent a retry of a task on a live
//   worker, and with none left ended it lostconnection (adversary 26 F2, 2 of 40 tasks under a reset every second).
// - A submit's create-tasks made a second block of records with the same submit id: the submit printed the second
//   block's ids, and the first, committed with it, would have been given jobs by reconciliation: the command run
//   twice, once under an id nobody had.

import { describe, expect, it } from 'vitest';

import { jobIdOf } from '../../src/tasks/job-data.js';
import { runJtm, startJtm, taskIds, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext, waitFinalRecord } from '../helpers/context.js';
import { testEnv, waitFor } from '../helpers/env.js';
import { wiredProxy } from '../helpers/tcp-proxy.js';

/**
 * A proxy to `port` whose client loses the answer to the first script call holding `marker` that Redis applied
 * (answered without an error: a NOSCRIPT is passed on, and the call sent again with its text is the one): with
 * `reset`, the client's connection is reset (RST) as that answer comes; with `silent`, that answer and every later
 * one are dropped and new connections get none (Redis silent after it applied the call).
 */
async function answerLoser(port: number, marker: string, then: 'reset' | 'silent') {
  let armed = false;
  let lost = false;
  const proxy = await wiredProxy(port, (client, toRedis) => {
    if (lost && then === 'silent') return;
    const server = toRedis();
    client.on('data', chunk => {
      if (!lost && chunk.includes(marker) && /eval/i.test(chunk.toString('latin1'))) armed = true;
      server.write(chunk);
    });
    server.on('data', chunk => {
      if (lost && then === 'silent') return;
      if (!armed || chunk[0] === 0x2d) {
        armed = false;
        return void client.write(chunk);
      }
      armed = false;
      lost = true;
      if (then === 'reset') {
        client.resetAndDestroy();
        server.destroy();
      }
    });
  });
  return {
    url: proxy.url,
    lost: () => lost,
    close: proxy.close,
  };
}

describe('a script whose answer is lost to a reset', () => {
  it("a worker's claim is sent again by the client and answered as it was: the task runs once, nothing charged", async () => {
    const direct = testEnv({ JTM_TASK_RETRIES: '0' });
    // The submit key base: only start-task names it, of a worker's commands.
    const proxy = await answerLoser(Number(new URL(direct['REDIS_URL']!).port), ':submit:', 'reset');
    const worker = startJtm(['worker', '-p', 'claimcut', '--slots', '1'], {
      ...direct,
      REDIS_URL: proxy.url,
    });
    const ctx = await openTestContext(direct);
    try {
      await waitWorkers(direct, 'claimcut');
      const [id] = taskIds((await runJtm(['submit', '-p', 'claimcut', '-cmd', 'echo ran'], direct)).stdout);
      const rec = await waitFinalRecord(ctx, id!, 60_000);
      expect(proxy.lost(), 'the claim answer was cut').toBe(true);
      expect(
        [rec.status_name, rec.attempts, rec.losses ?? 0, rec.lease_losses ?? 0],
        `${rec.reason}; ${worker.output().slice(-3000)}`,
      ).toEqual(['success', 1, 0, 0]);
    } finally {
      await closeContext(ctx);
      await worker.stop();
      proxy.close();
    }
  });

  it("a submit's create-tasks sent again is answered as it was: one record per task, the ids printed are the ones that run", async () => {
    const direct = testEnv();
    // The records' submit id: only create-tasks names it, of a submit's commands.
    const proxy = await answerLoser(Number(new URL(direct['REDIS_URL']!).port), 'submit_id', 'reset');
    const ctx = await openTestContext(direct);
    try {
      const r = await runJtm(['submit', '-p', 'createcut', '-cmd', 'echo ran'], {
        ...direct,
        REDIS_URL: proxy.url,
      });
      expect(proxy.lost(), 'the create-tasks answer was cut').toBe(true);
      expect(r.code, r.stderr).toBe(0);
      expect(taskIds(r.stdout)).toEqual([1]);
      // One record: a second block (task 2, same submit id, committed with the first) was made before.
      expect(await ctx.redis.get(ctx.keys.nextTaskId)).toBe('1');
      expect(await ctx.tasks.get(2)).toBeUndefined();
    } finally {
      await closeContext(ctx);
      proxy.close();
    }
  });

  it('a kill of a waiting task sent again after its answer was lost is answered as it was: removed, not already-final (adversary 37 F9)', async () => {
    const direct = testEnv();
    const ctx = await openTestContext(direct);
    const proxy = await answerLoser(Number(new URL(direct['REDIS_URL']!).port), 'eval', 'reset');
    try {
      const [id] = taskIds((await runJtm(['submit', '-p', 'killresend', '-cmd', 'true'], direct)).stdout);
      const r = await runJtm(['kill', '-tid', String(id), '--json'], { ...direct, REDIS_URL: proxy.url });
      expect(proxy.lost(), 'the kill answer was cut').toBe(true);
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toMatchObject({ status: 'terminated', action: 'removed' });
      // Its job is gone from the queue, as after a kill whose answer came.
      expect(await ctx.redis.exists(ctx.keys.poolJob('killresend', jobIdOf(id!)))).toBe(0);
    } finally {
      await closeContext(ctx);
      proxy.close();
    }
  });

  it('a kill sent whose answer never comes (Redis silent past JTM_KILL_RETRY): exit 255 saying it may have applied, and it did (adversary 26 F4)', async () => {
    // "cannot reach Redis" alone, though the kill applied: an operator was told it failed.
    const direct = testEnv();
    const worker = startJtm(['worker', '-p', 'killcut', '--slots', '1'], direct);
    const ctx = await openTestContext(direct);
    const proxy = await answerLoser(Number(new URL(direct['REDIS_URL']!).port), 'eval', 'silent');
    try {
      await waitWorkers(direct, 'killcut');
      const [id] = taskIds((await runJtm(['submit', '-p', 'killcut', '-cmd', 'sleep 60'], direct)).stdout);
      await waitFor(async () => (await ctx.tasks.get(id!))?.pid, 'the task running');
      const r = await runJtm(['kill', '-tid', String(id)], {
        ...direct,
        REDIS_URL: proxy.url,
        JTM_CONNECT_TIMEOUT: '1s',
        JTM_KILL_RETRY: '2s',
      });
      expect(proxy.lost(), 'the kill went through the proxy').toBe(true);
      expect(r.code, r.stderr).toBe(255);
      expect(r.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(
          new RegExp(
            `^jtm kill: the kill of task ${id} was sent but Redis stopped answering: it may have been applied`,
          ),
        ),
      ]);
      expect((await waitFinalRecord(ctx, id!, 30_000)).status_name).toBe('terminated');
    } finally {
      await closeContext(ctx);
      await worker.stop();
      proxy.close();
    }
  });
});
