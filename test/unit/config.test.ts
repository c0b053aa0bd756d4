import { describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/config.js';
import { InvalidInputError } from '../../src/errors.js';

describe('loadConfig', () => {
  it('rejects a prefix that is not key-safe', () => {
    expect(() => loadConfig({ JTM_PREFIX: 'a b' })).toThrow(InvalidInputError);
    expect(() => loadConfig({ JTM_HEARTBEAT_INTERVAL: 'often' })).toThrow(/JTM_HEARTBEAT_INTERVAL/);
  });

  it('refuses REDIS_URL and its alias JTM_REDIS_URL set to different URLs (either was silently preferred)', () => {
    const a = 'redis://127.0.0.1:6380';
    const b = 'redis://127.0.0.1:6381';
    expect(() => loadConfig({ REDIS_URL: a, JTM_REDIS_URL: b })).toThrow(
      /REDIS_URL and JTM_REDIS_URL are both set, to different URLs/,
    );
    expect(loadConfig({ REDIS_URL: a, JTM_REDIS_URL: a }).redisUrl).toBe(a);
    expect(loadConfig({ JTM_REDIS_URL: b }).redisUrl).toBe(b);
  });

  it('says that worker and manager need at least 3 missed beats when JTM_MISSED_BEATS is not an integer', () => {
    expect(() => loadConfig({ JTM_MISSED_BEATS: '2.5' })).toThrow(
      'JTM_MISSED_BEATS=2.5 must be an integer from 1 to 1000 (a worker and a manager need at least 3)',
    );
  });
});
