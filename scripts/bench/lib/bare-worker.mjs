// A bare BullMQ worker (the baseline of benchmark 2): stamps the time its processor starts for each job.
// Usage: node bare-worker.mjs <redis url> <queue>
import { Worker } from 'bullmq';
import { Redis } from 'ioredis';

const [url, queue] = process.argv.slice(2);
const connection = new Redis(url, { maxRetriesPerRequest: null });
const stamps = new Redis(url);
const worker = new Worker(
  queue,
  async job => {
    const t = Date.now();
    await stamps.hset('bench:started', job.id, t);
  },
  { connection, concurrency: 4 },
);
await worker.waitUntilReady();
await stamps.set('bench:ready', '1');
process.on('SIGTERM', async () => {
  await worker.close();
  process.exit(0);
});
