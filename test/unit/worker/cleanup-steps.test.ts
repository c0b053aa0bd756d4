import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../../src/logger.js';
import { runCleanups } from '../../../src/worker/cleanup-steps.js';

describe('runCleanups (the steps of a worker stop)', () => {
  it('runs every step in order, past one that throws, one that rejects and one that hangs past its bound', async () => {
    const done: string[] = [];
    const started = Date.now();
    await runCleanups(
      [
        { name: 'a', run: () => void done.push('a') },
        {
          name: 'throws',
          run: () => {
            done.push('throws');
            throw new Error('boom');
          },
        },
        { name: 'rejects', run: () => (done.push('rejects'), Promise.reject(new Error('no redis'))) },
        { name: 'hangs', boundMs: 50, run: () => (done.push('hangs'), new Promise(() => {})) },
        {
          name: 'async',
          boundMs: 5000,
          run: async () => {
            await new Promise(r => setTimeout(r, 10));
            done.push('async');
          },
        },
        { name: 'last', run: () => void done.push('last') },
      ],
      silentLogger(),
    );
    expect(done).toEqual(['a', 'throws', 'rejects', 'hangs', 'async', 'last']);
    // The hanging step held the stop only for its bound, not for ever (generous: the machine is loaded).
    expect(Date.now() - started).toBeLessThan(4000);
  });
});
