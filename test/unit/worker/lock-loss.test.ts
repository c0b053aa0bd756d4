// isJobLockLoss (src/worker/lock-loss.ts): which BullMQ worker errors are a lost job lock, logged as one warning
// (adversary 29 F3: routine recoveries logged them at error level with BullMQ's stack).
import { ErrorCode } from 'bullmq';
import { describe, expect, it } from 'vitest';

import { isJobLockLoss } from '../../../src/worker/lock-loss.js';

describe('isJobLockLoss', () => {
  it('knows BullMQ lock losses by code and by message', () => {
    const withCode = (message: string, code: number): Error => Object.assign(new Error(message), { code });
    expect(
      isJobLockLoss(withCode('Missing lock for job task-6. moveToFinished', ErrorCode.JobLockNotExist)),
    ).toBe(true);
    expect(isJobLockLoss(withCode('anything', ErrorCode.JobLockMismatch))).toBe(true);
    expect(isJobLockLoss(new Error('could not renew lock for job task-12'))).toBe(true);
    expect(isJobLockLoss(new Error('Lock mismatch for job task-3. Cmd moveToFinished from active'))).toBe(
      true,
    );
  });

  it('leaves every other error an error', () => {
    expect(isJobLockLoss(new Error('Missing key for job task-6. moveToFinished'))).toBe(false);
    expect(isJobLockLoss(Object.assign(new Error('x'), { code: ErrorCode.JobNotExist }))).toBe(false);
    expect(isJobLockLoss(new Error('connect ECONNREFUSED 127.0.0.1:6379'))).toBe(false);
    expect(isJobLockLoss('could not renew lock for job task-1')).toBe(false);
    expect(isJobLockLoss(undefined)).toBe(false);
  });
});
