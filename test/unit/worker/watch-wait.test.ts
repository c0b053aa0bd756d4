import { describe, expect, it } from 'vitest';

import { nextWatchWait } from '../../../src/worker/sampler.js';

describe('the wait between rounds of watches', () => {
  it('is the watch interval while a round is cheap', () => {
    expect(nextWatchWait(0.2, 250)).toBe(250);
  });

  it('stretches to keep the watch within half a percent of a core, at most doubling from one round to the next', () => {
    expect(nextWatchWait(4, 250)).toBe(500);
    expect(nextWatchWait(4, 250, 500)).toBeCloseTo(796, 0);
  });

  it('one costly round (the first /proc scan: 140 ms with 3,000 processes) no longer leaves the task unwatched for 7 s', () => {
    expect(nextWatchWait(140, 250, 250)).toBe(500);
    expect(nextWatchWait(0.5, 250, 500)).toBe(250);
  });

  it('stays within 1 s while a round costs up to 2 % of a core (a loaded node: a 2 s child was missed)', () => {
    expect(nextWatchWait(10, 250, 1000)).toBe(1000);
    expect(nextWatchWait(19, 250, 1000)).toBe(1000);
  });

  it('stretches past 1 s only for rounds dearer than 2 % of a core, and never below the set interval', () => {
    expect(nextWatchWait(40, 250, 1000)).toBe(1960);
    expect(nextWatchWait(10, 5000)).toBe(5000);
  });
});
