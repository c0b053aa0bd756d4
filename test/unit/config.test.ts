import { describe, expect, it } from 'vitest';

import { loadConfig } from '../../src/config.js';
import { InvalidInputError } from '../../src/errors.js';

describe('loadConfig', () => {
  it('rejects a prefix that is not key-safe', () => {
    expect(() => loadConfig({ JTM_PREFIX: 'a b' })).toThrow(InvalidInputError);
    expect(() => loadConfig({ JTM_HEARTBEAT_INTERVAL: 'often' })).toThrow(/JTM_HEARTBEAT_INTERVAL/);
  });
});
