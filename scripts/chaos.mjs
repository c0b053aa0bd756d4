#!/usr/bin/env node
// The full chaos run of issue #9: 2,000 tasks on 3 workers × 4 slots while workers (and the manager, when
// this build has one) are SIGKILLed and tasks are killed. Needs a build (npm run build).
// Usage: node scripts/chaos.mjs [--tasks N] [--worker-kills N] [--seed N]; REDIS_URL to use a server.
import { parseArgs } from 'node:util';

import { runChaos } from './lib/chaos.mjs';
import { startLocalRedis } from './lib/local-redis.mjs';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '2000' },
    'worker-kills': { type: 'string', default: '40' },
    seed: { type: 'string' },
  },
});
const server = process.env.REDIS_URL ? undefined : await startLocalRedis();
try {
  const report = await runChaos({
    redisUrl: process.env.REDIS_URL ?? server.url,
    tasks: Number(values.tasks),
    workerKills: Number(values['worker-kills']),
    batch: 100,
    settleMs: 600_000,
    ...(values.seed ? { seed: Number(values.seed) } : {}),
    log: line => console.error(line),
  });
  console.log(JSON.stringify(report, null, 2));
  process.exitCode = report.violations.length === 0 && report.submitFailures === 0 ? 0 : 1;
} finally {
  await server?.stop();
}
