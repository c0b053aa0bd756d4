/**
 * Tasks are not started when they could not finish before the worker's end of life minus this margin. Both
 * the worker (when it takes a task) and submit (when it checks a task fits its allocation) apply it, so it
 * lives here, below the worker.
 */
export const END_OF_LIFE_MARGIN_MS = 30_000;
