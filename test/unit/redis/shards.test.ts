import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { loadConfig } from '../../../src/config.js';
import { InvalidInputError } from '../../../src/errors.js';
import { Keys } from '../../../src/redis/keys.js';
import {
  CLUSTER_SLOTS,
  keySlot,
  keysFor,
  shardOfPool,
  shardOfTask,
  shardPrefix,
  taskIdOfCounter,
} from '../../../src/redis/shards.js';

describe('shard routing (src/redis/shards.ts)', () => {
  it('computes the slot Redis Cluster does (CRC16 XMODEM of the hash tag, mod 16384)', () => {
    // Values from the Redis Cluster specification and CLUSTER KEYSLOT.
    expect(keySlot('123456789')).toBe(0x31c3);
    expect(keySlot('foo')).toBe(12182);
    expect(keySlot('{user1000}.following')).toBe(keySlot('user1000'));
    expect(keySlot('foo{{bar}}zap')).toBe(keySlot('{bar'));
  });

  it('with one shard, keeps the keys and ids of an unsharded site', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), fc.string(), (counter, pool) => {
        expect(taskIdOfCounter(counter, 0, 1)).toBe(counter);
        expect(shardOfTask(counter, 1)).toBe(0);
        expect(shardOfPool(pool, 1)).toBe(0);
      }),
    );
    for (const prefix of ['{jtm}', '{t-1234}', 'site.{jtm}']) {
      expect(shardPrefix(prefix, 0, 1)).toBe(prefix);
      const [mine, today] = [keysFor(prefix, 0, 1), new Keys(prefix)];
      expect(mine.task(7)).toBe(today.task(7));
      expect(mine.nextTaskId).toBe(today.nextTaskId);
      expect(mine.queuePrefix).toBe(today.queuePrefix);
    }
  });

  it('encodes the shard in the id: positive, id mod N is the shard, no two (counter, shard) share an id', () => {
    fc.assert(
      fc.property(
        fc
          .integer({ min: 1, max: 256 })
          .chain(n =>
            fc.tuple(
              fc.constant(n),
              fc.integer({ min: 0, max: n - 1 }),
              fc.integer({ min: 1, max: 2 ** 40 }),
              fc.integer({ min: 0, max: n - 1 }),
              fc.integer({ min: 1, max: 2 ** 40 }),
            ),
          ),
        ([n, k, c, k2, c2]) => {
          const id = taskIdOfCounter(c, k, n);
          expect(Number.isSafeInteger(id) && id > 0).toBe(true);
          expect(shardOfTask(id, n)).toBe(k);
          if (k !== k2 || c !== c2) expect(taskIdOfCounter(c2, k2, n)).not.toBe(id);
        },
      ),
    );
  });

  it('gives each shard its own hash tag, in the middle of the k-th of N slot ranges', () => {
    for (const n of [2, 3, 5, 10, 64]) {
      const prefixes = Array.from({ length: n }, (_, k) => shardPrefix('{jtm}', k, n));
      expect(new Set(prefixes).size).toBe(n);
      prefixes.forEach((p, k) => {
        expect(p).toMatch(/^\{jtm\.\d+\}$/);
        const slot = keySlot(`${p}:task:1`);
        expect(slot).toBeGreaterThanOrEqual((k * CLUSTER_SLOTS) / n);
        expect(slot).toBeLessThan(((k + 1) * CLUSTER_SLOTS) / n);
        // Every key of the shard is in that one slot (Lua scripts stay single-slot).
        const keys = keysFor('{jtm}', k, n);
        for (const key of [keys.task(9), keys.nextTaskId, keys.poolJob('p', 'task-9'), keys.workerAlive('w')])
          expect(keySlot(key)).toBe(slot);
      });
    }
    // Deterministic, and the rest of the prefix is kept.
    expect(shardPrefix('site.{jtm}', 1, 3)).toBe(`site.${shardPrefix('{jtm}', 1, 3)}`);
    expect(shardPrefix('plain', 1, 3)).toMatch(/^\{plain\.\d+\}$/);
  });

  it('puts a pool on one shard, stably, and spreads names over all of them', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: 1, max: 256 }), (pool, n) => {
        const k = shardOfPool(pool, n);
        expect(k >= 0 && k < n && Number.isInteger(k)).toBe(true);
        expect(shardOfPool(pool, n)).toBe(k);
      }),
    );
    const used = new Set(Array.from({ length: 60 }, (_, i) => shardOfPool(`pool${i}`, 3)));
    expect(used.size).toBe(3);
  });

  it('reads JTM_SHARDS (default 1, from 1 to 256)', () => {
    expect(loadConfig({}).shards).toBe(1);
    expect(loadConfig({ JTM_SHARDS: '3' }).shards).toBe(3);
    for (const bad of ['0', '257', 'x', '-1']) {
      expect(() => loadConfig({ JTM_SHARDS: bad })).toThrow(InvalidInputError);
    }
  });
});
