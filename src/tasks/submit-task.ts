import { hostname } from 'node:os';

import type { JtmContext } from '../context.js';
import { isConnectionError } from '../redis/connection.js';
import { RedisUnavailableError, toError } from '../errors.js';
import { redisLocation } from '../redis/connection.js';
import { openPoolQueue } from './pool-queue.js';
import { touchPool } from '../pools/pool-registry.js';
import { TASK_JOB_NAME, taskJobOptions, type TaskJobData } from './job-data.js';
import { TaskStatus } from './status.js';
import type { NewTask } from './task-spec.js';

/**
 * Submits validated tasks: each gets a global id and a record (queued), then its BullMQ job on the pool's
 * queue (job id = task id), then the record moves to pending. Resolves only when all of that is in
 * Redis. If the job cannot be added the record is failed, so nothing is left half-written; a crash in
 * between is repaired by the manager's reconciliation (a queued record without a job is failed).
 */
export async function submitTasks(ctx: JtmContext, tasks: readonly NewTask[]): Promise<number[]> {
  const submitHost = hostname();
  const ids = await Promise.all(
    tasks.map(t =>
      ctx.tasks.create({
        command: t.command,
        pool: t.pool,
        pool_spec: t.poolSpec,
        cwd: t.cwd,
        stdout: t.stdout,
        stderr: t.stderr,
        output_files: t.outputFiles,
        allow_empty_outputs: t.allowEmptyOutputs,
        timeout_ms: t.timeoutMs,
        rc_file: t.rcFile,
        cromwell_job_id: t.cromwellJobId,
        max_retries: ctx.config.taskRetries,
        submit_host: submitHost,
      }),
    ),
  );
  try {
    const byPool = new Map<
      string,
      { name: string; data: TaskJobData; opts: ReturnType<typeof taskJobOptions> }[]
    >();
    tasks.forEach((t, i) => {
      const id = ids[i] as number;
      const list = byPool.get(t.pool) ?? [];
      list.push({ name: TASK_JOB_NAME, data: jobData(id, t), opts: taskJobOptions(id) });
      byPool.set(t.pool, list);
    });
    for (const [pool, jobs] of byPool) {
      const spec = tasks.find(t => t.pool === pool)?.poolSpec;
      await touchPool(ctx, pool, spec);
      const queue = openPoolQueue(ctx, pool);
      try {
        if (jobs.length === 1) {
          const j = jobs[0]!;
          await queue.add(j.name, j.data, j.opts);
        } else {
          await queue.addBulk(jobs);
        }
      } finally {
        await queue.close();
      }
    }
  } catch (err) {
    await Promise.allSettled(
      ids.map(id =>
        ctx.tasks.transition(
          id,
          [TaskStatus.queued],
          TaskStatus.failed,
          `submit failed: ${toError(err).message}`,
        ),
      ),
    );
    if (isConnectionError(err)) throw new RedisUnavailableError(redisLocation(ctx.config), err);
    throw err;
  }
  await Promise.all(
    ids.map(id => ctx.tasks.transition(id, [TaskStatus.queued], TaskStatus.pending, 'queued on pool')),
  );
  ctx.logger.debug({ ids, count: ids.length }, 'tasks submitted');
  return ids;
}

function jobData(id: number, t: NewTask): TaskJobData {
  return {
    id,
    command: t.command,
    cwd: t.cwd,
    stdout: t.stdout,
    stderr: t.stderr,
    output_files: t.outputFiles,
    allow_empty_outputs: t.allowEmptyOutputs,
    timeout_ms: t.timeoutMs,
  };
}
