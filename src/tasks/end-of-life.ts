/**
 * Tasks are not started when they could not finish before the worker's end of life minus this margin. Both
 * the worker (when it takes a task) and submit (when it checks a task fits its allocation) apply it, so it
 * lives here, below the worker.
 */
export const END_OF_LIFE_MARGIN_MS = 30_000;

/**
 * How long after its allocation began a dynamic pool's worker may take its first task (Slurm's start of the
 * batch script, site `env` lines and module loads, Node): a worker measures its life from its own start, so
 * submit asks that a task fit the allocation with this much to spare too. Without it, a time limit that fit
 * to the millisecond (JTM_SLURM_TIME_SLACK=30s, --timeout = the pool's time) was accepted and then refused by
 * every worker, while the manager booked one allocation after another (adversary 7, H3).
 */
export const WORKER_START_ALLOWANCE_MS = 60_000;
