import { describe, expect, it } from 'vitest';

import { slurmErrorText } from '../../../src/pools/list-pools.js';

describe("a pool's failing sbatch, as jtm pools and the dashboard show it", () => {
  it('counts the failures and the next try', () => {
    expect(
      slurmErrorText({ message: 'sbatch failed: Invalid partition', failures: 2, retry_at: 41_000 }, 1_000),
    ).toBe('sbatch failed 2 times in a row, next try in 40s: sbatch failed: Invalid partition');
    expect(slurmErrorText({ message: 'x', failures: 1 }, 0)).toBe('sbatch failed 1 time in a row: x');
  });

  it('prints one line without terminal controls, whatever the message held', () => {
    // A break found by trying: an escape sequence and a newline in the stored message reached the terminal.
    expect(
      slurmErrorText({ message: 'sbatch failed: x\u001b[31mRED\nsecond line\u0007', failures: 0 }, 0),
    ).toBe('sbatch failed: sbatch failed: xRED second line');
  });
});
