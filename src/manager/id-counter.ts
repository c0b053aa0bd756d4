import type { JtmContext } from '../context.js';
import { runScript } from '../redis/run-script.js';
import { READ_ID_COUNTER } from '../redis/scripts.js';
import { ID_ROLLBACK_MARGIN, raiseIdCounter } from '../store/id-counter.js';

export { ID_ROLLBACK_MARGIN } from '../store/id-counter.js';

/**
 * Ids are never handed out twice, even when Redis loses writes (a restart without AOF or from an older
 * snapshot, a failover to a replica that lagged): the id counter then goes back, the next submits get ids
 * that Cromwell still holds for calls that were lost, and its `isalive`/`kill` acted on another workflow's
 * task (adversary 7, H1). The manager remembers the highest counter it has seen and Redis's run id (per shard,
 * while it runs); finding the counter lower, or the run id changed (a restart or failover, which may have lost
 * its last second), it raises the counter past both with a margin and says so. Submits made between the loss
 * and the next sweep (at most JTM_SWEEP_INTERVAL) may still get the ids of lost tasks: Redis needs AOF. An id
 * whose record or job is still there is never handed out again, manager or not: the create script refuses it
 * and the submit raises the counter itself (TaskStore.createMany, adversary 24 F7).
 */
export async function guardIdCounter(ctx: JtmContext, seen: IdCounterSeen): Promise<void> {
  // A restart or a failover (Redis's run id changes) may have lost the last writes, a second of them with
  // AOF everysec: the counter may then be back, but still above what the last sweep saw.
  // Read on the node that holds the counter (READ_ID_COUNTER): on a Cluster, a plain INFO answers from any node.
  const [now, readRunId] = (await runScript(ctx.redis, READ_ID_COUNTER, [ctx.keys.nextTaskId], [])) as [
    number,
    string | null,
  ];
  const runId = readRunId || undefined;
  const restarted = seen.runId !== undefined && runId !== undefined && runId !== seen.runId;
  if (runId !== undefined) seen.runId = runId;
  if (now >= seen.high && !restarted) {
    seen.high = now;
    return;
  }
  const target = Math.max(now, seen.high) + ID_ROLLBACK_MARGIN;
  const before = await raiseIdCounter(ctx.redis, ctx.keys.nextTaskId, target);
  if (now < seen.high)
    ctx.logger.error(
      { counter_was: seen.high, counter_found: before, raised_to: target },
      'Redis lost data: the task id counter went back (a Redis restart without AOF or from an older snapshot, a failover to a lagging replica). Raised past its highest value so that no id is handed out twice; tasks submitted in the lost window are gone (isalive answers "no" for them)',
    );
  else
    ctx.logger.warn(
      { counter: before, raised_to: target },
      'Redis restarted or failed over (its run id changed): task ids go on past a margin, in case its last writes were lost',
    );
  seen.high = Math.max(target, before);
}

/** What a manager remembers of a shard's id counter between sweeps. */
export interface IdCounterSeen {
  /** The highest value seen. */
  high: number;
  /** Redis's run id at the last sweep (undefined: not known, e.g. INFO refused). */
  runId?: string;
}
