import { describe, expect, it } from 'vitest';

import { httpStatusOf } from '../../../src/dashboard/start-dashboard.js';
import {
  InvalidInputError,
  JtmError,
  PoolNotFoundError,
  RedisUnavailableError,
  TaskNotFoundError,
} from '../../../src/errors.js';

// JTM's error codes as the dashboard's HTTP statuses: never 500 for a user's mistake or a missing task.
const cases: [Error, number][] = [
  [new TaskNotFoundError(9, 255), 404],
  [new PoolNotFoundError('p'), 404],
  [new InvalidInputError('bad'), 400],
  [new RedisUnavailableError('x'), 503],
  [new JtmError('other', 'OTHER'), 500],
  [new Error('boom'), 500],
];

describe('dashboard error mapping', () => {
  it.each(cases)('%s → HTTP %i', (err, status) => {
    expect(httpStatusOf(err)).toBe(status);
  });
});
