// A Redis password rotated under a running worker (the ACL user's password changed, its connections killed, so every
// reconnect is refused WRONGPASS; then the password given back) is an outage for that worker, like a silent Redis
// (redis-pause.test.ts) or one refusing writes (redis-refusing-writes.test.ts). The worker stopped its runs before its
// lease could lapse (right), but the run's end was thrown away (the reads and the write of the give-back were refused
// WRONGPASS), so once Redis took the worker again the job's redelivery took the task over as "worker … was lost", a
// retry spent on a worker that never stopped (adversary 24 F2); a second rotation ended it lostconnection. Now: the run
// is given back once Redis takes the worker's password again, counted as one of Redis's silences, no retry spent; and
// while refused, the worker says so (rate-limited) and waits, it does not exit.
import { describe, expect, it } from 'vitest';

import { startJtm, waitWorkers } from '../helpers/cli.js';
import { closeContext, openTestContext } from '../helpers/context.js';
import { tempDir, testEnv } from '../helpers/env.js';
import { expectGivenBackUncounted, startLongTask } from '../helpers/outage-episode.js';
import { redisCli, startPlainRedis } from './servers.js';

const PASSWORD = 'rot-Pw1-secret';
const ROTATED = 'rot-Pw2-secret';

/**
 * A worker with one long task, its password rotated (its connections killed, so every reconnect is refused) for 8 s,
 * then given back: the run is stopped, given back uncounted, and run again. `withManager`: a manager on the same
 * user, sweeping every second, refused alike.
 */
async function rotation(withManager: boolean): Promise<void> {
  const dir = tempDir('jtm-rotation-');
  const server = await startPlainRedis();
  const port = String(server.port);
  // The worker's user; the test's own connections use the default user, which the rotation leaves alone.
  redisCli(['-p', port, 'ACL', 'SETUSER', 'jtm', 'on', `>${PASSWORD}`, '~*', '&*', '+@all']);
  const env = testEnv({
    REDIS_URL: `redis://jtm:${PASSWORD}@127.0.0.1:${port}`,
    // No retry to spend: a run charged as a loss ends lostconnection.
    JTM_TASK_RETRIES: '0',
    // The job's lock lapses during the refusal (as BullMQ's 30 s lock does in a longer one), and the stalled check
    // comes soon after the worker is taken again: the run's give-back must come first.
    JTM_LOCK_DURATION: '4s',
    JTM_STALLED_INTERVAL: '2s',
  });
  const ctxEnv = { ...env, REDIS_URL: `redis://127.0.0.1:${port}` };
  const worker = startJtm(['worker', '-p', 'rot', '--slots', '1'], env);
  const manager = withManager ? startJtm(['manager'], env) : undefined;
  const ctx = await openTestContext(ctxEnv);
  try {
    await waitWorkers(ctxEnv, 'rot');
    const task = await startLongTask(ctxEnv, ctx, 'rot', dir);
    redisCli(['-p', port, 'ACL', 'SETUSER', 'jtm', 'resetpass', `>${ROTATED}`]);
    redisCli(['-p', port, 'CLIENT', 'KILL', 'USER', 'jtm']);
    // Past the worker's 1.5 s lease and the job's 4 s lock.
    await new Promise(r => setTimeout(r, 8000));
    expect(worker.output()).toMatch(/Redis has not answered for \d+ ms; stopping the running tasks/);
    // Refused, not gone: the worker waits (a rotation must not end it) and says why, not at every reconnect.
    expect(worker.child.exitCode, worker.output().slice(-2000)).toBeNull();
    const said = worker.output().match(/Redis refuses this worker's credentials/g) ?? [];
    expect(said.length, worker.output().slice(-3000)).toBeGreaterThanOrEqual(1);
    expect(said.length).toBeLessThanOrEqual(2);
    expect(worker.output()).not.toContain(PASSWORD);
    redisCli(['-p', port, 'ACL', 'SETUSER', 'jtm', 'resetpass', `>${PASSWORD}`]);
    await expectGivenBackUncounted(
      ctx,
      task,
      () => `worker: ${worker.output().slice(-4000)}; manager: ${manager?.output().slice(-3000)}`,
    );
    expect(worker.output()).toMatch(/Redis takes this worker's credentials again/);
  } finally {
    await closeContext(ctx);
    await worker.stop();
    await manager?.stop();
    await server.stop();
  }
}

describe('a Redis password rotated under a running worker', () => {
  it('the run stopped while Redis refused the password is given back once it takes it again, no retry spent; the worker waits and says why (adversary 24 F2)', async () => {
    await rotation(false);
  }, 150_000);

  it('with a manager on the same user sweeping every second: the worker is not buried for the refusal, nothing is charged', async () => {
    await rotation(true);
  }, 150_000);
});
