import { describe, expect, it } from 'vitest';

import { parseTaskRecord, toHashPairs } from '../../../src/store/task-record.js';

describe('task record fields as a hash', () => {
  it('never writes a count that is not a number: NaN and Infinity are left out, as undefined (adversary 28 F3: redis_silences stored as "NaN")', () => {
    expect(
      toHashPairs({ redis_silences: NaN, lease_losses: Infinity, losses: 2, cpu_time_s: -Infinity, pid: 0 }),
    ).toEqual(['losses', '2', 'pid', '0']);
    // What is written reads back as written.
    expect(
      parseTaskRecord({ id: '7', status: '3', ...pairsToObject(toHashPairs({ redis_silences: 3 })) }),
    ).toMatchObject({
      redis_silences: 3,
    });
  });
});

function pairsToObject(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < pairs.length; i += 2) out[pairs[i]!] = pairs[i + 1]!;
  return out;
}
