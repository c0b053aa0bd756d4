import { describe, expect, it } from 'vitest';

import { httpStatusOf } from '../../../src/dashboard/start-dashboard.js';
import {
  InvalidInputError,
  JtmError,
  PoolNotFoundError,
  RedisUnavailableError,
  TaskNotFoundError,
} from '../../../src/errors.js';

describe('dashboard error mapping', () => {
  it('maps JTM error codes to HTTP statuses', () => {
    expect(httpStatusOf(new TaskNotFoundError(9, 255))).toBe(404);
    expect(httpStatusOf(new PoolNotFoundError('p'))).toBe(404);
    expect(httpStatusOf(new InvalidInputError('bad'))).toBe(400);
    expect(httpStatusOf(new RedisUnavailableError('x'))).toBe(503);
    expect(httpStatusOf(new JtmError('other', 'OTHER'))).toBe(500);
    expect(httpStatusOf(new Error('boom'))).toBe(500);
  });
});
