import { describe, expect, it } from 'vitest';

import { UNSUBMITTED_WAITS_MS } from '../../../src/worker/worker-options.js';

// A job fetched between its submit's addBulk and its commit is claimed again after each of these waits. The
// commit is one round trip behind the jobs: a 20 ms first wait was benchmark 2's p99 (submit → start).
describe('claim retries of a job whose submit has not committed yet', () => {
  it('come within a few milliseconds first, and keep trying for as long as before (≈ 0.6 s)', () => {
    expect(UNSUBMITTED_WAITS_MS[0]).toBeLessThanOrEqual(5);
    const total = UNSUBMITTED_WAITS_MS.reduce((a, b) => a + b, 0);
    expect(total).toBeGreaterThanOrEqual(620);
    expect(total).toBeLessThan(1000);
    for (let i = 1; i < UNSUBMITTED_WAITS_MS.length; i++)
      expect(UNSUBMITTED_WAITS_MS[i]).toBeGreaterThan(UNSUBMITTED_WAITS_MS[i - 1]!);
  });
});
