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
  });

  it('keeps an offset through jitter and near the threshold; drops it once the clocks agree (review: a warning and a new offset at every beat)', () => {
    expect(observeRedisClock(40_000, 10_000, 10_000)).toBe(30_000);
    for (const jitter of [-2, 1, -1, 49, -49])
      expect(observeRedisClock(40_000 + jitter, 10_000, 10_000)).toBe(30_000);
    expect(observeRedisClock(40_060, 10_000, 10_000)).toBe(30_060);
    // About 250 ms off: taken once, and kept while readings stay above 150 ms.
    observeRedisClock(10_000, 10_000, 10_000);
    expect(observeRedisClock(10_260, 10_000, 10_000)).toBe(260);
    expect(observeRedisClock(10_240, 10_000, 10_000)).toBe(260);
    expect(observeRedisClock(10_160, 10_000, 10_000)).toBe(160);
    expect(observeRedisClock(10_140, 10_000, 10_000)).toBe(0);
    expect(observeRedisClock(10_240, 10_000, 10_000)).toBe(0);
  });

  it('ignores a reading with a slow or impossible round trip, or no number: the offset stays', () => {
    observeRedisClock(40_000, 10_000, 10_000);
    expect(observeRedisClock(90_000, 10_000, 10_500)).toBeUndefined();
    expect(observeRedisClock(90_000, 10_000, 9_000)).toBeUndefined();
    expect(observeRedisClock(Number.NaN, 10_000, 10_000)).toBeUndefined();
    expect(wallClockOffsetMs()).toBe(30_000);
  });
});
