// The bulk-submit baseline of benchmark 4 (scale.mjs) and of submit-ab.mjs: BullMQ addBulk of bare jobs.

/**
 * Adds `n` bare jobs ({id, command: '/bin/true'}) over `queues` round-robin, in batches of `batch`: one
 * addBulk per queue per batch, the queues' calls in parallel (as submit sends a batch's jobs per pool).
 */
export async function addBareJobs(queues, n, batch) {
  for (let start = 0; start < n; start += batch) {
    const byQueue = new Map();
    for (let i = start; i < Math.min(n, start + batch); i++) {
      const list = byQueue.get(i % queues.length) ?? [];
      list.push({ name: 'task', data: { id: i, command: '/bin/true' } });
      byQueue.set(i % queues.length, list);
    }
    await Promise.all([...byQueue].map(([q, jobs]) => queues[q].addBulk(jobs)));
  }
}
