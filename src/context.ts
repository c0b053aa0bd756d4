import type { Config } from './config.js';
import type { Logger } from './logger.js';
import {
  closeConnection,
  createConnection,
  type ConnectionRole,
  type RedisClient,
} from './redis/connection.js';
import { Keys } from './redis/keys.js';
import { TaskStore } from './store/task-store.js';

/** What every operation needs: configuration, logger, one Redis connection, key names and the task store. */
export interface JtmContext {
  readonly config: Config;
  readonly logger: Logger;
  readonly redis: RedisClient;
  readonly keys: Keys;
  readonly tasks: TaskStore;
}

export async function openContext(config: Config, logger: Logger, role: ConnectionRole): Promise<JtmContext> {
  const redis = await createConnection(config, role, role === 'worker' ? logger : undefined);
  const keys = new Keys(config.prefix);
  return { config, logger, redis, keys, tasks: new TaskStore(redis, keys, config) };
}

export async function closeContext(ctx: JtmContext): Promise<void> {
  await closeConnection(ctx.redis);
}
