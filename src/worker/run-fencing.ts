import type { Logger } from '../logger.js';

import type { JtmContext } from '../context.js';
import { TaskStatus } from '../tasks/status.js';
import type { Heartbeat } from './heartbeat.js';
import { monotonicMs } from './monotonic.js';
import type { TaskRun } from './task-run.js';

/**
 * Kill requests missed on pub/sub, and tasks that another worker has taken over (fencing): re-reads the
 * record of every run of this worker (one pipeline) and stops those it no longer owns or that must be killed.
 */
export async function reconcileRuns(
  ctx: JtmContext,
  workerId: string,
  runs: ReadonlyMap<number, TaskRun>,
): Promise<void> {
  if (runs.size === 0) return;
  const ids = [...runs.keys()];
  const pipeline = ctx.redis.pipeline();
  for (const id of ids)
    pipeline.hmget(ctx.keys.task(id), 'status', 'worker_id', 'kill_requested', 'run_token');
  const res = (await pipeline.exec()) ?? [];
  res.forEach(([err, v], i) => {
    const run = runs.get(ids[i] as number);
    if (err || !run || !Array.isArray(v)) return;
    const [status, owner, kill, runToken]: (string | null)[] = v;
    const owned = status === String(TaskStatus.running) && owner === workerId && runToken === run.token;
    if (!owned) run.stop('superseded');
    else if (kill === '1') run.stop('kill');
  });
}

/**
 * Self-fencing: a worker whose beats have not succeeded for most of its lease (Redis paused, restarting or
 * out of reach) stops its runs before the alive key can expire on the Redis side, where another worker or
 * the manager would take the tasks over: a takeover never overlaps a live copy. Checked apart from the
 * heartbeat, whose own call may hang on an unresponsive Redis.
 */
export function startSelfFencing(
  heartbeat: Heartbeat,
  runs: ReadonlyMap<number, TaskRun>,
  log: Logger,
  heartbeatIntervalMs: number,
): NodeJS.Timeout {
  return setInterval(
    () => {
      if (runs.size === 0 || !heartbeat.mustFence()) return;
      const live = [...runs.values()].filter(r => r.stoppedBy === undefined);
      if (live.length === 0) return;
      log.error(
        { tasks: live.map(r => r.id), leaseLeftMs: heartbeat.leaseUntil - monotonicMs() },
        'heartbeat lease about to lapse: stopping the running tasks before a takeover',
      );
      for (const r of live) r.stop('fenced', heartbeat.fencing.graceMs);
    },
    Math.max(20, Math.min(250, heartbeatIntervalMs / 4)),
  );
}
