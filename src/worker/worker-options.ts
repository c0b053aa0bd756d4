/**
 * What a worker knows of its allocation (from its flags, as the original's), reported as they are in its
 * heartbeat and every resource sample.
 */
export interface AllocationFacts {
  slurmJobId: number;
  workerType: 0 | 2;
  numCores: number;
  memPerNode: string;
  memPerCore: string;
  jobTime: string | null;
  workersOnNode: number;
}

/** How a worker runs: its pool, its slots, and what it knows of its allocation. */
export interface WorkerOptions extends AllocationFacts {
  pool: string;
  workerId: string;
  /** Concurrent tasks. */
  slots: number;
  /** Epoch ms at which this worker's allocation ends (Slurm walltime or --lifetime); undefined: never. */
  endOfLife?: number;
  /** Exit after this long without a task (dynamic pools scale down); undefined: never. */
  idleTimeoutMs?: number;
  /** How long running tasks may take to finish after a stop request before they are killed and re-queued. */
  shutdownGraceMs: number;
  /**
   * Memory limit (bytes) of each task that names none: `--task-mem-limit`, or for a dynamic pool's worker its
   * allocation's memory ÷ (workers per node × slots). Undefined: unlimited.
   */
  taskMemLimitBytes?: number;
  /** Every task this worker runs accepts empty output files (the original worker's `-zf`). */
  allowEmptyOutputs?: boolean;
}

// Defined below the worker: submit's fit check uses it too, and src/tasks must not import the worker.
export { END_OF_LIFE_MARGIN_MS } from '../tasks/end-of-life.js';

/** How long a task deferred by a worker near its end of life waits before another worker may take it. */
export const DEFER_DELAY_MS = 5_000;

/**
 * The waits (ms) before each new claim of a job fetched before its submit committed. A submit commits one
 * round trip after its jobs are added, so the first retries come within a few milliseconds: a single-task
 * submit fetched in that window (≈ 1 in 12 on an idle worker) waited 20 ms, which was benchmark 2's p99.
 * Then the wait doubles, as before, for a large submit still adding jobs (≈ 0.6 s in all before the job is
 * deferred).
 */
export const UNSUBMITTED_WAITS_MS: readonly number[] = [2, 5, 10, 20, 40, 80, 160, 320];
