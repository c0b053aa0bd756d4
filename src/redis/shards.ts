/**
 * The one place that routes pools and task ids to shards (docs/scaling.md). A site with JTM_SHARDS = N > 1
 * has N namespaces, each under its own Redis Cluster hash tag: a pool, its queue and its tasks' records live
 * in one namespace (so every Lua script still touches one slot), and different namespaces hash to different
 * slot ranges (so, on an evenly split cluster, to different masters). With N = 1 the one namespace is
 * JTM_PREFIX itself: keys and ids are exactly those of an unsharded site.
 */
import { Keys } from './keys.js';

/** Redis Cluster's slot count: a key's slot is CRC16(hash tag) mod 16384. */
export const CLUSTER_SLOTS = 16384;

/** CRC16-CCITT (XMODEM), the checksum Redis Cluster hashes keys with (cluster.c keyHashSlot). */
function crc16(text: string): number {
  let crc = 0;
  for (const byte of Buffer.from(text, 'utf8')) {
    crc ^= byte << 8;
    for (let i = 0; i < 8; i++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
  }
  return crc;
}

/** The Cluster slot of a key (its `{hash tag}` when it has a non-empty one), as CLUSTER KEYSLOT answers. */
export function keySlot(key: string): number {
  const open = key.indexOf('{');
  if (open >= 0) {
    const close = key.indexOf('}', open + 1);
    if (close > open + 1) return crc16(key.slice(open + 1, close)) % CLUSTER_SLOTS;
  }
  return crc16(key) % CLUSTER_SLOTS;
}

/** Whether `prefix` has a non-empty `{hash tag}` (then every key under it is in the tag's slot). */
export function hasHashTag(prefix: string): boolean {
  return /\{[^{}]+\}/.test(prefix);
}

/**
 * The prefix of shard `k` of `n`. Shard k's hash tag is `<tag>.<j>` (the tag of JTM_PREFIX, or the prefix
 * itself when it has none) with j the smallest integer whose slot falls in the middle half of the k-th of n
 * equal slot ranges: `redis-cli --cluster create` splits slots evenly over the masters, so with as many
 * masters as shards each shard has a master of its own, and the margins keep that true when the split is
 * off by a few slots. Deterministic: every process of the site computes the same prefixes.
 */
export function shardPrefix(prefix: string, k: number, n: number): string {
  if (n === 1) return prefix;
  const m = /\{([^{}]+)\}/.exec(prefix);
  const tag = m ? (m[1] as string) : prefix;
  const lo = (k * CLUSTER_SLOTS) / n;
  const width = CLUSTER_SLOTS / n;
  for (let j = 0; ; j++) {
    const slot = crc16(`${tag}.${j}`) % CLUSTER_SLOTS;
    if (slot >= lo + width / 4 && slot < lo + (3 * width) / 4) {
      return m ? prefix.replace(m[0], `{${tag}.${j}}`) : `{${tag}.${j}}`;
    }
  }
}

/**
 * The shard of a pool: FNV-1a of its name mod n. Stable (the same for every process and version), and
 * independent of the slot layout, so pools spread over shards as evenly as their names hash.
 */
export function shardOfPool(pool: string, n: number): number {
  if (n === 1) return 0;
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(pool, 'utf8')) h = Math.imul(h ^ byte, 0x01000193) >>> 0;
  return h % n;
}

/** The shard of a task id: ids are `counter × n + shard` (taskIdOfCounter), so the id alone says where. */
export function shardOfTask(id: number, n: number): number {
  return id % n;
}

/**
 * The id of the `counter`-th task (1, 2, …) of shard k of n. Each shard has its own counter; with n = 1 the
 * id is the counter, as on an unsharded site. Ids of different shards never collide and stay positive.
 */
export function taskIdOfCounter(counter: number, k: number, n: number): number {
  return counter * n + k;
}

const keysCache = new Map<string, Keys>();

/** The key names of shard k of a site (prefix, n). */
export function keysFor(prefix: string, k: number, n: number): Keys {
  const id = `${prefix}\n${k}\n${n}`;
  let keys = keysCache.get(id);
  if (!keys) {
    keys = new Keys(shardPrefix(prefix, k, n));
    keysCache.set(id, keys);
  }
  return keys;
}
