import { describe, expect, it } from 'vitest';

import { parseDurationOr } from '../../src/durations.js';
import { InvalidInputError } from '../../src/errors.js';

describe('parseDurationOr', () => {
  it('parses what parseDuration parses', () => {
    expect(parseDurationOr('90s', '--wait')).toBe(90_000);
    expect(parseDurationOr('01:00:00', 'timeout')).toBe(3_600_000);
  });
  it('refuses anything else as one InvalidInputError line naming the input and the forms that work', () => {
    expect(() => parseDurationOr('soon', '--since', '2h or 1d')).toThrow(InvalidInputError);
    expect(() => parseDurationOr('soon', '--since', '2h or 1d')).toThrow(
      'invalid --since "soon": use e.g. 2h or 1d',
    );
    expect(() => parseDurationOr('1:2', 'timeout')).toThrow(
      'invalid timeout "1:2": use e.g. 90s, 10m or hh:mm:ss',
    );
  });
});
