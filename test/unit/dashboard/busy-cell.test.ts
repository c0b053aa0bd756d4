import { describe, expect, it } from 'vitest';

import { busyCell } from '../../../src/dashboard/views.js';

describe("the workers page's Busy cell", () => {
  it('says how many ran at once since the previous beat when the beat itself fell between runs (adversary 21 F6)', () => {
    // A worker on 8 slots streaming tasks of a few milliseconds: its beat's running list is mostly empty.
    expect(busyCell({ running: [], busy_peak: 8, slots: 8 })).toMatch(
      /^0 \/ 8 <span[^>]*>\(up to 8\)<\/span>$/,
    );
    expect(busyCell({ running: [1, 2], busy_peak: 2, slots: 8 })).toBe('2 / 8');
    // A beat of an older worker (no figure) reads as before.
    expect(busyCell({ running: [1], busy_peak: 0, slots: 4 })).toBe('1 / 4');
  });
});
