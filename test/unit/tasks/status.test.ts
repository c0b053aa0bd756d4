import { describe, expect, it } from 'vitest';

import { isActive, statusName, TaskStatus } from '../../../src/tasks/status.js';

describe('status codes', () => {
  it('are exactly the original ones', () => {
    expect(TaskStatus).toEqual({
      ready: 0,
      queued: 1,
      pending: 2,
      running: 3,
      success: 4,
      outputerror: -1,
      failed: -2,
      outofresource: -3,
      terminated: -4,
      invalidtask: -5,
      timeout: -6,
      lostconnection: -7,
    });
    expect(statusName(99)).toBe('invalidtask');
    expect([0, 1, 2, 3].every(isActive)).toBe(true);
    expect([4, -1, -2, -3, -4, -5, -6, -7].some(isActive)).toBe(false);
  });
});
