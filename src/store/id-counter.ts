import type { RedisClient } from '../redis/connection.js';
import { runScript } from '../redis/run-script.js';
import { RAISE_COUNTER } from '../redis/scripts.js';

/**
 * How far past the highest value seen the id counter is raised when it went back: the ids handed out after
 * the last look (one sweep interval of submits, at thousands per second) must not come again. The manager
 * (src/manager/id-counter.ts) and a submit that found its new ids taken (TaskStore.createMany) both raise by it.
 */
export const ID_ROLLBACK_MARGIN = 1_000_000;

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
