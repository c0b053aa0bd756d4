import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { jobIdOf, taskIdOfText, taskJobOptions, taskIdOfJob } from '../../../src/tasks/job-data.js';

describe('job id codec', () => {
  it('round-trips every task id, and submit uses it', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        id => taskIdOfJob(jobIdOf(id)) === id,
      ),
    );
    expect(jobIdOf(42)).toBe('task-42');
    expect(taskJobOptions(42).jobId).toBe(jobIdOf(42));
  });

  it('refuses what is not a task job id (the bare id provisioning used to remove, foreign jobs)', () => {
    for (const j of [
      '42',
      'task-',
      'task-0',
      'task-01',
      'task-4x',
      'Task-4',
      ' task-4',
      'task-12345678901234567',
      'task-9999999999999999',
      'repeat:x',
    ])
      expect(taskIdOfJob(j), j).toBeUndefined();
    expect(taskIdOfJob(undefined)).toBeUndefined();
  });
});

describe('task id text', () => {
  it('shows a URL given where the id goes with its password masked (adversary 42 L5: --redis-url forgotten)', () => {
    for (const raw of ['redis://u:s3cr3tPW@h:1', 'rediss://:s3cr3tPW@h', 'u:s3cr3tPW@h']) {
      expect(() => taskIdOfText(raw), raw).toThrow(
        /^invalid task id "[^"]*\*\*\*[^"]*": expected a positive integer$/,
      );
      expect(() => taskIdOfText(raw), raw).not.toThrow(/s3cr3tPW/);
    }
    expect(() => taskIdOfText('12x')).toThrow('invalid task id "12x": expected a positive integer');
    expect(taskIdOfText(' 07 ')).toBe(7);
  });
});
