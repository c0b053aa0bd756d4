import { describe, expect, it } from 'vitest';

import { formatHms, formatSeconds, parseDuration } from '../../src/durations.js';

describe('durations', () => {
  it('reads hh:mm:ss, d-hh:mm:ss, ms strings and bare seconds', () => {
    expect(parseDuration('00:30:00')).toBe(1_800_000);
    expect(parseDuration('100:00:00')).toBe(360_000_000);
    expect(parseDuration('1-02:00:00')).toBe(93_600_000);
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('5')).toBe(5000);
    // A limit of weeks (a long assembly): `ms` reads them, so does JTM (it refused `3w`).
    expect(parseDuration('3w')).toBe(21 * 24 * 3600 * 1000);
    expect(parseDuration('1 week')).toBe(7 * 24 * 3600 * 1000);
    expect(formatHms(3_661_000)).toBe('01:01:01');
  });
  it('formats seconds for messages exactly', () => {
    expect([500, 2000, 1500, 1, 90_000].map(formatSeconds)).toEqual([
      '0.5 s',
      '2 s',
      '1.5 s',
      '0.001 s',
      '90 s',
    ]);
  });
  it('rejects what the original let through', () => {
    for (const bad of ['1:2', '00:60:00', '00:00:60', '1:2:3:4', 'soon', '', '-5s', '00:10:00x']) {
      expect(() => parseDuration(bad), bad).toThrow();
    }
  });
});
