// The lease a run's start is checked against (heartbeat.ts startDeadline): the lease's end less the fencing
// margin while the lease has held since the claim; already past once it broke after the claim (a beat that
// succeeded only after the previous lease may have lapsed: another worker may have taken the task meanwhile).
import { describe } from 'vitest';

import { Heartbeat } from '../../src/worker/heartbeat.js';
import { monotonicMs } from '../../src/worker/monotonic.js';
import type { WorkerOptions } from '../../src/worker/worker-options.js';
import { it } from '../helpers/store.js';

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
    const claimEpoch = hb.leaseEpoch;
    await hb.beat([], 'running');
    expect(hb.startDeadline(claimEpoch)).toBe(hb.leaseUntil - hb.fencing.marginMs);
    expect(hb.startDeadline(claimEpoch)).toBeGreaterThan(monotonicMs());
  });

  it('a lease that broke after the claim: past at once, even though a beat renewed it', async ({
    ctx,
    expect,
  }) => {
    const hb = new Heartbeat(ctx, opts, 'h');
    await hb.beat([], 'running');
    const claimEpoch = hb.leaseEpoch;
    // As after a SIGSTOP longer than the lease: the last successful beat's lease is over.
    hb.leaseUntil = monotonicMs() - 1;
    await hb.beat([], 'running');
    expect(hb.mustFence()).toBe(false);
    expect(hb.startDeadline(claimEpoch)).toBe(0);
    // A task claimed under the new lease may start.
    expect(hb.startDeadline(hb.leaseEpoch)).toBeGreaterThan(monotonicMs());
  });

  it('a claim in the millisecond of the beat that renewed a lapsed lease may start (a local round trip is shorter)', async ({
    ctx,
    expect,
  }) => {
    // What a worker does when Redis answers again after a pause longer than the lease: the claim gate renews the
    // lease, then claims at once. Before, a claim in the renewing beat's millisecond counted as made under the old
    // lease: the task was given back at once and, with no retries left, ended lostconnection
    // (test/reliability/redis-pause.test.ts, seen 1 run in 24 under load).
    const frozen = monotonicMs();
    let now = frozen;
    const hb = new Heartbeat(ctx, opts, 'h', () => now);
    await hb.beat([], 'running');
    hb.leaseUntil = frozen - 1;
    now = frozen;
    await hb.beat([], 'running');
    expect(hb.mustFence()).toBe(false);
    const claimEpoch = hb.leaseEpoch;
    expect(hb.startDeadline(claimEpoch)).toBe(frozen + hb.ttlMs - hb.fencing.marginMs);
  });
});
