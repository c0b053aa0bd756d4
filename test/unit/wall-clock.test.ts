// wall-clock.ts: the offset a worker applies to the stamps it writes, from readings of Redis's TIME.
import { afterEach, describe, expect, it } from 'vitest';

import { CORRECTED_FROM_MS, observeRedisClock, wallClockOffsetMs, wallNow } from '../../src/wall-clock.js';

describe('observeRedisClock', () => {
  afterEach(() => {
    observeRedisClock(1000, 1000, 1000); // back to no offset
  });

  it('applies an offset past the threshold, measured from the middle of the round trip', () => {
    // Sent at 10,000, answered at 10,010 (node clock); Redis read 40,005: the node is 30 s behind.
    expect(observeRedisClock(40_005, 10_000, 10_010)).toBe(30_000);
    expect(wallClockOffsetMs()).toBe(30_000);
    const now = Date.now();
    expect(wallNow() - now).toBeGreaterThanOrEqual(30_000);
    expect(wallNow() - now).toBeLessThan(30_100);
    // Ahead: negative.
    expect(observeRedisClock(10_000, 40_000, 40_000)).toBe(-30_000);
  });

  it('leaves a small difference alone (NTP keeps nodes closer than a reading can tell)', () => {
    expect(observeRedisClock(10_000 + CORRECTED_FROM_MS - 1, 10_000, 10_000)).toBe(0);
    expect(observeRedisClock(10_000 + CORRECTED_FROM_MS, 10_000, 10_000)).toBe(CORRECTED_FROM_MS);
    // Back within the threshold: the offset goes.
    expect(observeRedisClock(10_010, 10_000, 10_000)).toBe(0);
  });

  it('ignores a reading with a slow or impossible round trip, or no number: the offset stays', () => {
    observeRedisClock(40_000, 10_000, 10_000);
    expect(observeRedisClock(90_000, 10_000, 10_500)).toBe(30_000);
    expect(observeRedisClock(90_000, 10_000, 9_000)).toBe(30_000);
    expect(observeRedisClock(Number.NaN, 10_000, 10_000)).toBe(30_000);
  });
});
