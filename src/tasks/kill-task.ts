import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';

import { forTask, withContextRetrying, type ContextSource, type JtmContext } from '../context.js';
import {
  isConnectionError,
  isWriteRefusal,
  KillUnsettledError,
  TaskNotFoundError,
  toError,
} from '../errors.js';
import { sendToWorker } from '../control/worker-control.js';
import { refuseReplica } from '../redis/replica-check.js';
import { jobIdOf } from './job-data.js';
import { openPoolQueue } from './pool-queue.js';
import { isFinal, statusName, TaskStatus, type TaskStatusName } from './status.js';

export interface KillResult {
  task_id: number;
  /** The status after the kill (terminated, or the final status the task had already reached). */
  status: TaskStatusName;
  /** What happened: already-final, removed (never started), killed (tree gone), worker-dead, requested (still dying). */
  action: 'already-final' | 'removed' | 'killed' | 'worker-dead' | 'requested';
}

/**
 * killTask, tried again while Redis is unreachable or refuses writes for a while (isWriteRefusal), for up to
 * `retryMs` (JTM_KILL_RETRY): Cromwell ignores
 * kill's exit code, so a kill lost to a transient error (a restart, a node so loaded that the connection times
 * out) would leave the task running. `jtm kill` and the API's kill() both run this.
 */
export async function killTaskRetrying(
  src: ContextSource,
  id: number,
  waitMs: number,
  retryMs: number,
): Promise<KillResult> {
  // One id for every try of this kill: a try sent again after a lost answer is answered as the first.
  const sent = { request: false, id: randomUUID() };
  try {
    return await withContextRetrying(src, ctx => killTask(ctx, id, waitMs, sent), retryMs, isWriteRefusal);
  } catch (err) {
    // A request sent whose answer never came may have been applied (the task then ends terminated): said so,
    // instead of "cannot reach Redis" alone for a kill that happened (adversary 26 F4).
    if (sent.request && isConnectionError(err)) throw new KillUnsettledError(id, err);
    throw err;
  }
}

/**
 * Kills a task from any host. Waiting: ended at once and its job removed from the queue. Running: the
 * intent is recorded and the owning worker told; it kills the whole tree and records terminated, which
 * this waits for (up to `waitMs`). Worker dead: ended at once. Already final: nothing changes.
 */
export async function killTask(
  anyShard: JtmContext,
  id: number,
  waitMs: number,
  /** Set once a kill request went out on a connection that was up: from then on, it may have been applied. */
  sent: { request: boolean; id?: string } = { request: false },
): Promise<KillResult> {
  const ctx = forTask(anyShard, id);
  if (ctx.redis.status === 'ready') sent.request = true;
  const outcome = await ctx.tasks.requestKill(id, undefined, sent.id);
  switch (outcome.kind) {
    case 'missing':
      // Answered, and nothing written: a replica's "missing" (refuseReplica) is Redis unavailable, not a kill
      // that may have happened (KillUnsettledError).
      sent.request = false;
      await refuseReplica(ctx);
      throw new TaskNotFoundError(id, 255);
    case 'final':
      return { task_id: id, status: statusName(outcome.status), action: 'already-final' };
    case 'worker-dead':
      ctx.logger.info({ task: id, worker: outcome.workerId }, 'worker not alive: task ended without it');
      return { task_id: id, status: 'terminated', action: 'worker-dead' };
    case 'ended': {
      await removeJob(ctx, id);
      return { task_id: id, status: 'terminated', action: 'removed' };
    }
    case 'signal-worker': {
      // The intent is recorded: the worker acts on it at its next beat even if it is not told now. A refused
      // or lost PUBLISH (an ACL user without it) answered 255 for a kill that then happened.
      await sendToWorker(ctx, outcome.workerId, { type: 'kill', task: id }).catch((err: unknown) =>
        ctx.logger.warn(
          { task: id, err: toError(err) },
          'could not tell the worker at once: it kills the task at its next heartbeat',
        ),
      );
      const status = await waitForFinal(ctx, id, waitMs);
      if (status === undefined) return { task_id: id, status: 'running', action: 'requested' };
      // Another end was under way as the kill came (its timeout fired, it exited): not the kill's doing.
      return {
        task_id: id,
        status: statusName(status),
        action: status === TaskStatus.terminated ? 'killed' : 'already-final',
      };
    }
  }
}

async function removeJob(ctx: JtmContext, id: number): Promise<void> {
  const pool = await ctx.redis.hget(ctx.keys.task(id), 'pool');
  if (!pool) return;
  const queue = openPoolQueue(ctx, pool);
  try {
    await queue.remove(jobIdOf(id));
  } catch (err) {
    // A job a worker has just fetched is locked; its start guard sees the terminated record and skips it.
    ctx.logger.debug({ err, task: id }, 'job not removed');
  } finally {
    await queue.close();
  }
}

async function waitForFinal(ctx: JtmContext, id: number, waitMs: number): Promise<number | undefined> {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const status = await ctx.tasks.status(id);
    if (status !== undefined && isFinal(status)) return status;
    if (Date.now() >= deadline) return undefined;
    await sleep(100);
  }
}
