import { workerEnvironment, type Config } from '../config.js';
import { deploymentScope } from './leftovers.js';
import { startPtyHost } from './run-in-pty.js';

/** The environment a worker's tasks start from: the worker's own without secrets, with its deployment. */
export function taskEnvironment(
  config: Pick<Config, 'redisUrl' | 'prefix' | 'taskOomScoreAdj'>,
): Record<string, string> {
  const env = workerEnvironment();
  // Which deployment a task belongs to: leftover sweeps touch only their own deployment's processes.
  env['JTM_TASK_SCOPE'] = deploymentScope(config);
  // Read and unset by the task's wrapper (task-argv.ts), which raises its own OOM score to it before the command
  // runs. In one place for every task: the host gets it once, with the common environment.
  if (config.taskOomScoreAdj > 0) env[OOM_SCORE_ADJ_VAR] = String(config.taskOomScoreAdj);
  else delete env[OOM_SCORE_ADJ_VAR];
  return env;
}

/**
 * The variable that carries JTM_TASK_OOM_SCORE_ADJ to the task's wrapper. Without it, when the memory where
 * the worker runs (a Slurm job's cgroup, the node) ran out, the kernel's OOM killer took the largest process:
 * with several small tasks, the worker (≈ 70 MB of Node), and every task lost its run. Unprivileged processes
 * may raise their score (not lower it), so the tasks are raised, not the worker lowered.
 */
export const OOM_SCORE_ADJ_VAR = 'JTM_OOM_SCORE_ADJ';

/**
 * How long the pty host waits for a sign of life from its worker before it kills the tasks: shorter than the
 * takeover time (heartbeat interval × missed beats after its last beat, when its liveness key expires). The
 * worker's last beat can precede its last ping by up to one interval, and the host notices a missing ping up to
 * one check (250 ms at most) late: the deadline leaves the interval, that check and 100 ms for the kill, and at
 * least a quarter interval more (1.25 intervals, as before, for beats 2 s apart: 6 s → 3.5 s; 6 s → 4.65 s for the
 * defaults, 1 s × 6). With a short lease, half of it at the least.
 */
export function watchdogDeadline(heartbeatIntervalMs: number, missedBeats: number): number {
  const takeover = heartbeatIntervalMs * missedBeats;
  const margin = Math.max(1.25 * heartbeatIntervalMs, heartbeatIntervalMs + 350);
  return Math.max(Math.floor(takeover - margin), Math.floor(takeover / 2));
}

/** Starts this worker's pty host (once: later calls find it running), ready for its first task. */
export function startTaskHost(config: Config): void {
  startPtyHost(taskEnvironment(config), watchdogDeadline(config.heartbeatIntervalMs, config.missedBeats));
}
