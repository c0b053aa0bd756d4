import type { JtmContext } from '../context.js';
import { runScript } from '../redis/run-script.js';
import { GUARD_ID_COUNTER } from '../redis/scripts.js';
import { ID_ROLLBACK_MARGIN, raiseIdCounter } from '../store/id-counter.js';

export { ID_ROLLBACK_MARGIN } from '../store/id-counter.js';

/**
 * Ids are never handed out twice, even when Redis loses writes (a restart without AOF or from an older
 * snapshot, a failover to a replica that lagged): the id counter then goes back, the next submits get ids
 * that Cromwell still holds for calls that were lost, and its `isalive`/`kill` acted on another workflow's
 * task (adversary 7, H1). A Redis whose run id changed since the last id was handed out (a restart or failover,
 * which may have lost its last second or more) has the counter raised past a margin by whoever hands out or looks
 * at ids first, a submit or this sweep (guardRunId in scripts.ts). The manager also remembers the highest counter
 * it has seen (per shard, while it runs): finding it lower, it raises the counter past that with a margin and
 * says so (a loss without a restart: the counter deleted or evicted, a FLUSHALL). An id
 * whose record or job is still there is never handed out again, manager or not: the create script refuses it
 * and the submit raises the counter itself (TaskStore.createMany, adversary 24 F7).
 */
export async function guardIdCounter(ctx: JtmContext, seen: IdCounterSeen): Promise<void> {
  // A restart or a failover (Redis's run id changes) may have lost the last writes, a second of them with
  // AOF everysec: the counter may then be back, but still above what the last sweep saw. The first id handed out
  // after the change raises the counter (guardRunId), or this call does when no submit came first.
  const [now, readRunId, raisedFrom] = (await runScript(
    ctx.redis,
    GUARD_ID_COUNTER,
    [ctx.keys.nextTaskId, ctx.keys.idCounterRunId],
    [],
  )) as [number, string | null, number | null];
  const runId = readRunId || undefined;
  const restarted = seen.runId !== undefined && runId !== undefined && runId !== seen.runId;
  if (runId !== undefined) seen.runId = runId;
  if (raisedFrom !== null || restarted) {
    ctx.logger.warn(
      { counter: raisedFrom ?? undefined, now },
      raisedFrom !== null
        ? 'Redis restarted or failed over (its run id or replication id changed): task ids go on past a margin, in case its last writes were lost'
        : 'Redis restarted or failed over (its run id or replication id changed): a submit already took task ids past a margin, in case its last writes were lost',
    );
  }
  // The counter as this Redis had it before this call's raise. After a submit's raise (guardRunId) a loss smaller
  // than the margin is hidden from this check, and harmless: the raise took the ids past it.
  const found = raisedFrom ?? now;
  if (found >= seen.high) {
    seen.high = now;
    return;
  }
  const target = seen.high + ID_ROLLBACK_MARGIN;
  const before = await raiseIdCounter(ctx.redis, ctx.keys.nextTaskId, target);
  ctx.logger.error(
    { counter_was: seen.high, counter_found: found, raised_to: Math.max(target, before) },
    'Redis lost data: the task id counter went back (a Redis restart without AOF or from an older snapshot, a failover to a lagging replica). Raised past its highest value so that no id is handed out twice; tasks submitted in the lost window are gone (isalive answers "no" for them)',
  );
  seen.high = Math.max(target, before);
}

/** What a manager remembers of a shard's id counter between sweeps. */
export interface IdCounterSeen {
  /** The highest value seen. */
  high: number;
  /** Redis's identity at the last sweep, `<run id>:<replication id>` (undefined: not known, e.g. INFO refused). */
  runId?: string;
}
