import type { RedisClient } from '../redis/connection.js';
import { runScript } from '../redis/run-script.js';
import { RAISE_COUNTER } from '../redis/scripts.js';

export { ID_ROLLBACK_MARGIN } from '../redis/scripts.js';

/**
 * Sets a shard's id counter to `target` unless it is already higher (atomically with the submits' INCRBYs, so
 * two raisers never lower it). Returns its value before (0: missing).
 */
export async function raiseIdCounter(
  redis: RedisClient,
  counterKey: string,
  target: number,
): Promise<number> {
  return Number(await runScript(redis, RAISE_COUNTER, [counterKey], [target]));
}
