import type { JobType, Queue } from 'bullmq';

import type { JtmContext } from '../context.js';
import type { PoolSpec } from '../pool-spec.js';
import { callSize, largestOf, oversizedCalls, specOfSize, type CallSize } from '../pools/call-sizes.js';
import { listLiveWorkers } from '../pools/live-workers.js';
import { readPoolSpecVersion, shrinkPoolSpec } from '../pools/pool-registry.js';
import { jobIdOf, taskIdOfJob, type TaskJob } from '../tasks/job-data.js';
import { endTask } from '../tasks/end-task.js';
import { openPoolQueue } from '../tasks/pool-queue.js';
import { TaskStatus } from '../tasks/status.js';

/** Queue states whose tasks are waiting for a worker. */
export const QUEUED = ['waiting', 'delayed', 'prioritized'] as const;

/**
 * The pool's queued tasks end failed with the reason as given (pending → failed, job removed); undefined,
 * failing none, while live workers serve the pool.
 */
export async function failQueuedTasks(
  ctx: JtmContext,
  pool: string,
  message: string,
): Promise<number | undefined> {
  // Not while a live worker serves the pool (one started by hand, a site's standing allocation): its queue
  // runs there. A pool made dynamic by one submit with a Slurm spec the manager could not provision failed the
  // queued tasks of the worker that was serving it (adversary 9 J8).
  if ((await listLiveWorkers(ctx, pool)).length > 0) return undefined;
  const queue = openPoolQueue(ctx, pool);
  try {
    return await failTasks(ctx, queue, pool, await taskIdsIn(queue, QUEUED), () => message);
  } finally {
    await queue.close();
  }
}

/** What failOversizedCalls did: tasks failed, and queued ones left for a smaller allocation. */
export interface OversizedOutcome {
  failed: number;
  kept: number;
}

/**
 * Slurm refused a dynamic pool's allocation for good (after JTM_SBATCH_MAX_FAILURES sbatch). The allocation
 * asks the most time, memory and CPUs of the pool's calls, so in a shared pool one impossible call (`-m 100000`)
 * failed every queued call, and every later one: the spec kept its maximum (adversary 25 F2). Now only the
 * calls that ask the most, where the calls differ, fail (oversizedCalls); the pool's spec is set to what its
 * other queued and running calls need, and they get allocations of that size. Calls that all ask the same
 * fail together, as before, and the spec is cleared to the next call's. Undefined, failing none, while live
 * workers serve the pool.
 */
export async function failOversizedCalls(
  ctx: JtmContext,
  pool: string,
  message: string,
): Promise<OversizedOutcome | undefined> {
  if ((await listLiveWorkers(ctx, pool)).length > 0) return undefined;
  // The version first: a submit that merges its spec after this read makes the new spec wait for the next
  // failure (shrinkPoolSpec writes nothing), since its call may be missing from the calls listed below.
  const current = await readPoolSpecVersion(ctx, pool);
  const queue = openPoolQueue(ctx, pool);
  try {
    const queuedIds = await taskIdsIn(queue, QUEUED);
    const runningIds = await taskIdsIn(queue, ['active']);
    const sizes = await callSizes(ctx, [...queuedIds, ...runningIds]);
    const queued = new Map(queuedIds.map(id => [id, sizes.get(id) ?? callSize(undefined)]));
    const running = runningIds.map(id => sizes.get(id) ?? callSize(undefined));
    const asked = current ? callSize(current.spec) : largestOf(queued.values());
    const plan = oversizedCalls(queued, running, asked);
    const doomed = plan === 'all' ? queuedIds : plan === 'none' ? [] : plan;
    const why =
      plan === 'all'
        ? () => message
        : (id: number) =>
            `${message} (this call asks ${describe(queued.get(id)!)}, more than the pool's other calls: ` +
            'it failed alone, and they get allocations without it)';
    const failed = await failTasks(ctx, queue, pool, doomed, why);
    const gone = new Set(doomed);
    const need = largestOf([...[...queued].filter(([id]) => !gone.has(id)).map(([, s]) => s), ...running]);
    if (current) await shrinkPoolSpec(ctx, pool, current.seq, specOfSize(current.spec, need), need);
    return { failed, kept: queuedIds.length - doomed.length };
  } finally {
    await queue.close();
  }
}

function describe(size: CallSize): string {
  const parts: string[] = [];
  if (size.mem > 0) parts.push(`${Math.ceil(size.mem)} MB`);
  if (size.cpu > 0) parts.push(`${size.cpu} CPUs`);
  if (size.time > 0) parts.push(`${Math.ceil(size.time / 1000)} s`);
  return parts.join(', ') || 'the site defaults';
}

async function taskIdsIn(queue: Queue<TaskJob>, states: readonly JobType[]): Promise<number[]> {
  const counts = await queue.getJobCounts(...states);
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const ids: number[] = [];
  for (let start = 0; start < total; start += 500) {
    const page = await queue.getJobs([...states], start, start + 499, true);
    for (const j of page) {
      const id = taskIdOfJob(j?.id);
      if (id !== undefined) ids.push(id);
    }
    if (page.length === 0) break;
  }
  return ids;
}

/** Each task's own spec (its record's pool_spec), read in pipelines of 500. */
async function callSizes(ctx: JtmContext, ids: readonly number[]): Promise<Map<number, CallSize>> {
  const out = new Map<number, CallSize>();
  for (let i = 0; i < ids.length; i += 500) {
    const part = ids.slice(i, i + 500);
    const read = ctx.redis.pipeline();
    for (const id of part) read.hget(ctx.keys.task(id), 'pool_spec');
    const replies = (await read.exec()) ?? [];
    part.forEach((id, k) => {
      const raw = replies[k]?.[1];
      out.set(id, callSize(typeof raw === 'string' && raw ? (JSON.parse(raw) as PoolSpec) : undefined));
    });
  }
  return out;
}

async function failTasks(
  ctx: JtmContext,
  queue: Queue<TaskJob>,
  pool: string,
  ids: readonly number[],
  reason: (id: number) => string,
): Promise<number> {
  let failed = 0;
  for (const id of ids) {
    // endTask: the one path that ends a task, with its rc (126, "could not start") for Cromwell, which
    // otherwise waited its exit-code-timeout for an rc that never came (adversary 7, H2).
    const res = await endTask(ctx, id, {
      from: [TaskStatus.pending],
      to: TaskStatus.failed,
      reason: `no Slurm allocation for pool ${pool}: ${reason(id)}`,
    });
    if (!res.done) continue;
    failed++;
    // Its job must go too: left waiting, it would count as work and trigger more sbatch calls.
    await queue.remove(jobIdOf(id)).catch(() => 0);
  }
  return failed;
}
