import { describe, expect, it } from 'vitest';

import { Keys } from '../../../src/redis/keys.js';

describe('keys', () => {
  it('puts every key and queue under one hash tag', () => {
    const k = new Keys('{jtm}');
    for (const key of [
      k.task(5),
      k.taskEvents(5),
      k.worker('w'),
      k.workerAlive('w'),
      k.pool('p'),
      k.queuePrefix,
      k.managerAlive,
    ]) {
      expect(key.startsWith('{jtm}:')).toBe(true);
    }
  });
});
