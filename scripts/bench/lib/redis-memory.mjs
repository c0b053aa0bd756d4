// Redis memory figures shared by benchmark 1 (throughput.mjs, the bench-4 memory row) and 8 (redis-cost.mjs).

/** INFO memory `used_memory`, in bytes. */
export async function usedMemory(redis) {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

/**
 * `used_memory` after CONFIG RESETSTAT, and what the reset freed. Redis ≥ 7 keeps a latency histogram per
 * command name (`latency-tracking`, on by default), ≈ 25 KB each, allocated the first time a command runs
 * after a start or a RESETSTAT and freed only by the next RESETSTAT: about 1 MB for the ≈ 40 commands a JTM run
 * uses, fixed per server, not per task. Measuring both ends of a run after a reset keeps them out of a
 * per-task figure (the reset also zeroes INFO commandstats: read those first).
 */
export async function memoryAfterReset(redis) {
  const before = await usedMemory(redis);
  await redis.config('RESETSTAT');
  const after = await usedMemory(redis);
  return { bytes: after, histogramBytes: Math.max(0, before - after) };
}

/** The table row of the ≤ 1 KB per finished task target. */
export function memoryRow(id, figure, bytesPerTask, extra = {}) {
  return {
    id,
    figure,
    value: bytesPerTask,
    unit: ' B',
    baselineName: '1 KB',
    baseline: 1024,
    ratio: bytesPerTask / 1024,
    target: '≤ 1 KB',
    pass: bytesPerTask <= 1024,
    ...extra,
  };
}
