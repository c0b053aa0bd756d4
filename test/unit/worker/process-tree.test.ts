import { describe, expect, it } from 'vitest';

import { parseStat } from '../../../src/worker/process-tree.js';

describe('process tree', () => {
  it('parses /proc/<pid>/stat even with spaces and parentheses in the command name', () => {
    const stat =
      '1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 555 8192000 300 18446744073709551615';
    expect(parseStat(1234, stat)).toMatchObject({
      pid: 1234,
      state: 'S',
      ppid: 1,
      pgid: 1234,
      cpuTicks: 13,
      start: 555,
      vsizeBytes: 8192000,
      rssBytes: 300 * 4096,
    });
  });
});
