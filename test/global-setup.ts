import type { TestProject } from 'vitest/node';

// @ts-expect-error plain JavaScript helper shared with the demo
import { startLocalRedis } from '../scripts/lib/local-redis.mjs';

/** One private redis-server for the whole run (or $REDIS_URL); each test uses its own key prefix. */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env['REDIS_URL']) {
    project.provide('redisUrl', process.env['REDIS_URL']);
    return async () => {};
  }
  const server = (await startLocalRedis()) as { url: string; stop: () => Promise<void> };
  project.provide('redisUrl', server.url);
  return () => server.stop();
}

declare module 'vitest' {
  export interface ProvidedContext {
    redisUrl: string;
  }
}
