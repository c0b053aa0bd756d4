// The lease a run's start is checked against (heartbeat.ts startDeadline): the lease's end less the fencing
// margin while the lease has held since the claim; already past once it broke after the claim (a beat that
// succeeded only after the previous lease may have lapsed: another worker may have taken the task meanwhile).
import { describe } from 'vitest';

import { Heartbeat } from '../../src/worker/heartbeat.js';
import type { WorkerOptions } from '../../src/worker/worker-options.js';
import { waitFor } from '../helpers/env.js';
import { it } from '../helpers/store.js';

/** A claim time after the lease's start (the clock moved on from the beat's millisecond). */
const claimTime = (hb: Heartbeat): Promise<number> =>
  waitFor(() => Date.now() > hb.leaseSince && Date.now(), 'the clock to pass the beat', 1000, 1);

const opts: WorkerOptions = {
  pool: 'p',
  workerId: 'w-lease',
  slots: 1,
  shutdownGraceMs: 1000,
  slurmJobId: 0,
  workerType: 0,
  numCores: 1,
  memPerNode: '',
  memPerCore: '',
  jobTime: null,
  workersOnNode: 1,
};

describe('heartbeat: the start deadline of a claimed task', () => {
  it('an unbroken lease: its end less the fencing margin', async ({ ctx, expect }) => {
    const hb = new Heartbeat(ctx, opts, 'h');
    await hb.beat([], 'running');
    const claimedAt = await claimTime(hb);
    await hb.beat([], 'running');
    expect(hb.startDeadline(claimedAt)).toBe(hb.leaseUntil - hb.fencing.marginMs);
    expect(hb.startDeadline(claimedAt)).toBeGreaterThan(Date.now());
  });

  it('a lease that broke after the claim: past at once, even though a beat renewed it', async ({
    ctx,
    expect,
  }) => {
    const hb = new Heartbeat(ctx, opts, 'h');
    await hb.beat([], 'running');
    const claimedAt = await claimTime(hb);
    // As after a SIGSTOP longer than the lease: the last successful beat's lease is over.
    hb.leaseUntil = Date.now() - 1;
    await hb.beat([], 'running');
    expect(hb.mustFence()).toBe(false);
    expect(hb.startDeadline(claimedAt)).toBe(0);
    // A task claimed under the new lease may start.
    expect(hb.startDeadline(await claimTime(hb))).toBeGreaterThan(Date.now());
  });
});
