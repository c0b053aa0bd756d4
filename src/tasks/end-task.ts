import type { JtmContext } from '../context.js';
import { wallNow } from '../wall-clock.js';
import { writeRcForEndedTask } from './rc-file.js';
import { isFinal, TaskStatus } from './status.js';
import type { TaskRecord } from '../store/task-record.js';
import type { Fence, TransitionOutcome } from '../store/task-store.js';

/** A change of a task's status that may end it: from one of `from` (or, fenced, from running) to `to`. */
export interface EndChange {
  to: number;
  reason: string;
  /** Statuses the task may be in; ignored with a fence (a fenced change leaves running only). */
  from?: readonly number[];
  /** The execution that must still own the task (a worker recording its own run's end). */
  fence?: Fence;
  fields?: Partial<Record<keyof TaskRecord, unknown>>;
  now?: number;
}

/**
 * The one path by which a task's run is ended (or given back): the worker recording an end, remove-pool,
 * reconciliation. The guarded transition (fenced on the execution when one is named) counts a final status
 * in the same script (finished counters and histograms); once it is done, the rc file decision follows
 * (writeRcIfJtmEnded). Kill requests and dead-worker recovery run their own scripts, then the same decision.
 */
export async function endTask(ctx: JtmContext, id: number, change: EndChange): Promise<TransitionOutcome> {
  const { to, reason, fields = {}, now = wallNow() } = change;
  const res = change.fence
    ? await ctx.tasks.transitionFenced(id, change.fence, to, reason, fields, now)
    : await ctx.tasks.transition(id, change.from ?? [], to, reason, fields, now);
  if (res.done) await writeRcIfJtmEnded(ctx, id, to);
  return res;
}

/**
 * After task `id` reached `status`: a final status other than success may be one JTM decided (timed out,
 * lost, never started, pool removed), whose Cromwell script wrote no rc; rcCodeFor (rc-file.ts) decides from
 * the record and writes nothing for a user kill or a run that wrote its own. A success, or a status that is
 * not final, reads nothing.
 */
export async function writeRcIfJtmEnded(ctx: JtmContext, id: number, status: number): Promise<void> {
  if (!isFinal(status) || status === TaskStatus.success) return;
  const record = await ctx.tasks.get(id);
  if (record) await writeRcForEndedTask(ctx, record);
}
