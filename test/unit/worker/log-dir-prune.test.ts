import { existsSync, mkdirSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { silentLogger } from '../../../src/logger.js';
import { pruneLogDir } from '../../../src/worker/log-dir-prune.js';
import { tempDir } from '../../helpers/env.js';

describe('pruneLogDir', () => {
  it("removes JTM's own task files older than the retention, nothing else (adversary 8 I9: the log dir grew for ever)", async () => {
    const dir = tempDir('jtm-prune-');
    mkdirSync(join(dir, 'tasks'));
    mkdirSync(join(dir, 'resource'));
    const day = 86_400_000;
    const now = Date.now();
    const files: [string, number][] = [
      ['tasks/1.out', 8], // old, JTM's: removed
      ['tasks/1.err', 8],
      ['tasks/1.times', 8],
      ['resource/1.csv', 8],
      ['tasks/2.out', 1], // young: kept
      ['tasks/5.out', 30], // old, but its record still exists (a silent task running for a month): kept
      ['resource/2.csv', 1],
      ['tasks/results.txt', 8], // a name JTM does not make: kept
      ['tasks/3.out.bak', 8],
      ['worker.log', 8], // not in a task directory: kept
    ];
    for (const [name, ageDays] of files) {
      writeFileSync(join(dir, name), 'x');
      const t = (now - ageDays * day) / 1000;
      utimesSync(join(dir, name), t, t);
    }
    // A link named like a task file: not followed, not removed.
    symlinkSync(join(dir, 'worker.log'), join(dir, 'tasks', '9.out'));
    const asked: number[] = [];
    const recordsExist = async (ids: readonly number[]): Promise<boolean[]> => {
      asked.push(...ids);
      return ids.map(id => id === 5);
    };
    const removed = await pruneLogDir(dir, 7 * day, recordsExist, silentLogger(), now);
    expect(asked.sort()).toEqual([1, 1, 1, 1, 5]);
    expect(removed).toBe(4);
    expect(files.filter(([name]) => existsSync(join(dir, name))).map(([name]) => name)).toEqual([
      'tasks/2.out',
      'tasks/5.out',
      'resource/2.csv',
      'tasks/results.txt',
      'tasks/3.out.bak',
      'worker.log',
    ]);
    expect(existsSync(join(dir, 'tasks', '9.out'))).toBe(true);
    // A log dir without those directories: nothing to do, no error.
    expect(await pruneLogDir(tempDir('jtm-prune-empty-'), day, recordsExist, silentLogger(), now)).toBe(0);
  });
});
